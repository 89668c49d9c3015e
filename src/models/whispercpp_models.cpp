#include "models/whispercpp_models.h"

#include <cstdint>
#include <string>

namespace sra {
namespace {

// A file of ggerganov/whisper.cpp: its size and sha256 as Hugging Face's API lists them (LFS
// object ids, revision 5359861c739e955e79d9a303bcbc70fb988958b1), its SHA-1 as whisper.cpp's
// models/README.md publishes it (only for the files that table lists).
struct Published {
  const char* name;
  std::uint64_t size;
  const char* sha256;
  const char* sha1;
};

constexpr Published kWhisperCpp[] = {
    {"tiny", 77691713, "be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21",
     "bd577a113a864445d4c299885e0cb97d4ba92b5f"},
    {"tiny-q5_1", 32152673, "818710568da3ca15689e31a743197b520007872ff9576237bda97bd1b469c3d7", ""},
    {"tiny-q8_0", 43537433, "c2085835d3f50733e2ff6e4b41ae8a2b8d8110461e18821b09a15c40c42d1cca", ""},
    {"tiny.en", 77704715, "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f",
     "c78c86eb1a8faa21b369bcd33207cc90d64ae9df"},
    {"tiny.en-q5_1", 32166155, "c77c5766f1cef09b6b7d47f21b546cbddd4157886b3b5d6d4f709e91e66c7c2b",
     ""},
    {"tiny.en-q8_0", 43550795, "5bc2b3860aa151a4c6e7bb095e1fcce7cf12c7b020ca08dcec0c6d018bb7dd94",
     ""},
    {"base", 147951465, "60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe",
     "465707469ff3a37a2b9b8d8f89f2f99de7299dac"},
    {"base-q5_1", 59707625, "422f1ae452ade6f30a004d7e5c6a43195e4433bc370bf23fac9cc591f01a8898", ""},
    {"base-q8_0", 81768585, "c577b9a86e7e048a0b7eada054f4dd79a56bbfa911fbdacf900ac5b567cbb7d9", ""},
    {"base.en", 147964211, "a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002",
     "137c40403d78fd54d454da0f9bd998f78703390c"},
    {"base.en-q5_1", 59721011, "4baf70dd0d7c4247ba2b81fafd9c01005ac77c2f9ef064e00dcf195d0e2fdd2f",
     ""},
    {"base.en-q8_0", 81781811, "a4d4a0768075e13cfd7e19df3ae2dbc4a68d37d36a7dad45e8410c9a34f8c87e",
     ""},
    {"small", 487601967, "1be3a9b2063867b937e64e2ec7483364a79917e157fa98c5d94b5c1fffea987b",
     "55356645c2b361a969dfd0ef2c5a50d530afd8d5"},
    {"small-q5_1", 190085487, "ae85e4a935d7a567bd102fe55afc16bb595bdb618e11b2fc7591bc08120411bb",
     ""},
    {"small-q8_0", 264464607, "49c8fb02b65e6049d5fa6c04f81f53b867b5ec9540406812c643f177317f779f",
     ""},
    {"small.en", 487614201, "c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d",
     "db8a495a91d927739e50b3fc1cc4c6b8f6c2d022"},
    {"small.en-q5_1", 190098681, "bfdff4894dcb76bbf647d56263ea2a96645423f1669176f4844a1bf8e478ad30",
     ""},
    {"small.en-q8_0", 264477561, "67a179f608ea6114bd3fdb9060e762b588a3fb3bd00c4387971be4d177958067",
     ""},
    {"medium", 1533763059, "6c14d5adee5f86394037b4e4e8b59f1673b6cee10e3cf0b11bbdbee79c156208",
     "fd9727b6e1217c2f614f9b698455c4ffd82463b4"},
    {"medium-q5_0", 539212467, "19fea4b380c3a618ec4723c3eef2eb785ffba0d0538cf43f8f235e7b3b34220f",
     ""},
    {"medium-q8_0", 823369779, "42a1ffcbe4167d224232443396968db4d02d4e8e87e213d3ee2e03095dea6502",
     ""},
    {"medium.en", 1533774781, "cc37e93478338ec7700281a7ac30a10128929eb8f427dda2e865faa8f6da4356",
     "8c30f0e44ce9560643ebd10bbe50cd20eafd3723"},
    {"medium.en-q5_0", 539225533,
     "76733e26ad8fe1c7a5bf7531a9d41917b2adc0f20f2e4f5531688a8c6cd88eb0", ""},
    {"medium.en-q8_0", 823382461,
     "43fa2cd084de5a04399a896a9a7a786064e221365c01700cea4666005218f11c", ""},
    {"large-v1", 3094623691, "7d99f41a10525d0206bddadd86760181fa920438b6b33237e3118ff6c83bb53d",
     "b1caaf735c4cc1429223d5a74f0f4d0b9b59a299"},
    {"large-v2", 3094623691, "9a423fe4d40c82774b6af34115b8b935f34152246eb19e80e376071d3f999487",
     "0f4c8e34f21cf1a914c59d8b3ce882345ad349d6"},
    {"large-v2-q5_0", 1080732091,
     "3a214837221e4530dbc1fe8d734f302af393eb30bd0ed046042ebf4baf70f6f2",
     "00e39f2196344e901b3a2bd5814807a769bd1630"},
    {"large-v2-q8_0", 1656129691,
     "fef54e6d898246a65c8285bfa83bd1807e27fadf54d5d4e81754c47634737e8c", ""},
    {"large-v3", 3095033483, "64d182b440b98d5203c4f9bd541544d84c605196c4f7b845dfa11fb23594d1e2",
     "ad82bf6a9043ceed055076d0fd39f5f186ff8062"},
    {"large-v3-q5_0", 1081140203,
     "d75795ecff3f83b5faa89d1900604ad8c780abd5739fae406de19f23ecd98ad1",
     "e6e2ed78495d403bef4b7cff42ef4aaadcfea8de"},
    {"large-v3-turbo", 1624555275,
     "1fc70f774d38eb169993ac391eea357ef47c88757ef72ee5943879b7e8e2bc69",
     "4af2b29d7ec73d781377bfd1758ca957a807e941"},
    {"large-v3-turbo-q5_0", 574041195,
     "394221709cd5ad1f40c46e6031ca61bce88931e6e088c188294c6d5a55ffa7e2",
     "e050f7970618a659205450ad97eb95a18d69c9ee"},
    {"large-v3-turbo-q8_0", 874188075,
     "317eb69c11673c9de1e1f0d459b253999804ec71ac4c23c17ecf5fbe24e259a1", ""},
};

// OpenAI's parameter counts per size.
const char* parameters_of(const std::string& size) {
  if (size == "tiny") return "39 M";
  if (size == "base") return "74 M";
  if (size == "small") return "244 M";
  if (size == "medium") return "769 M";
  if (size == "large-v3-turbo") return "809 M";
  return "1550 M";  // large-v1, -v2, -v3
}

CatalogModel entry_for(const Published& p) {
  const std::string name = p.name;
  const std::size_t dash = name.rfind("-q");
  const std::string quantization = dash == std::string::npos ? "" : name.substr(dash + 1);
  std::string size = name.substr(0, dash);
  const bool english = size.size() > 3 && size.compare(size.size() - 3, 3, ".en") == 0;
  if (english) size.resize(size.size() - 3);
  CatalogModel m;
  m.name = name;
  m.kind = "whisper";
  m.description = "OpenAI Whisper " + size + (english ? " (English only)" : "") + ", " +
                  parameters_of(size) + " parameters, " +
                  (quantization.empty() ? "f16" : quantization) + " (whisper.cpp's file)";
  m.languages = english                          ? "English"
                : size.rfind("large-v3", 0) == 0 ? "100 languages"  // large-v3 added Cantonese
                                                 : "99 languages";
  m.file_name = "ggml-" + name + ".bin";
  m.format = ModelFormat::file;
  m.hub = HubFile{"ggerganov/whisper.cpp", "main", m.file_name, p.sha256, p.sha1, p.size};
  return m;
}

}  // namespace

void add_whispercpp_models(std::vector<CatalogModel>& catalog) {
  for (const Published& p : kWhisperCpp) {
    CatalogModel m = entry_for(p);
    bool attached = false;
    for (auto& existing : catalog) {
      if (existing.name == m.name) {
        existing.hub = m.hub;
        attached = true;
      }
    }
    if (!attached) {
      m.file_sha256 = m.source_sha256 = p.sha256;
      m.file_size = p.size;
      catalog.push_back(std::move(m));
    }
  }
}

}  // namespace sra
