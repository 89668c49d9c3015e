// The pure helpers behind the S3 and GCS storages; the storages themselves are proven against
// real servers by tests/integration/test_object_storage.py.
#include <gtest/gtest.h>

#include "core/errors.h"
#include "storage/aws_credentials.h"
#include "storage/gcs_credentials.h"
#include "storage/http_client.h"

namespace sra::storage {
namespace {

TEST(ObjectStorageHelpers, IniFilesAsAwsWritesThem) {
  auto ini = parse_ini(
      "# comment\n[default]\naws_access_key_id = AKIA1\naws_secret_access_key=s3cret \n"
      "[profile ci]\nregion = eu-west-1\n; another comment\n");
  EXPECT_EQ(ini["default"]["aws_access_key_id"], "AKIA1");
  EXPECT_EQ(ini["default"]["aws_secret_access_key"], "s3cret");
  EXPECT_EQ(ini["profile ci"]["region"], "eu-west-1");
}

TEST(ObjectStorageHelpers, CredentialChainOrder) {
  AwsCredentialProvider from_env(Config({{"AWS_ACCESS_KEY_ID", "A"},
                                         {"AWS_SECRET_ACCESS_KEY", "B"},
                                         {"AWS_SESSION_TOKEN", "T"},
                                         {"AWS_DEFAULT_REGION", "eu-north-1"},
                                         {"AWS_ENDPOINT_URL", "http://minio:9000/"}}));
  AwsKeys keys = from_env.current();
  EXPECT_EQ(keys.access_key_id, "A");
  EXPECT_EQ(keys.session_token, "T");
  EXPECT_EQ(from_env.region(), "eu-north-1");
  EXPECT_EQ(from_env.endpoint(), "http://minio:9000");
  // AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL; AWS_REGION over AWS_DEFAULT_REGION.
  AwsCredentialProvider specific(Config({{"AWS_ACCESS_KEY_ID", "A"},
                                         {"AWS_SECRET_ACCESS_KEY", "B"},
                                         {"AWS_REGION", "us-west-2"},
                                         {"AWS_DEFAULT_REGION", "eu-north-1"},
                                         {"AWS_ENDPOINT_URL", "http://a"},
                                         {"AWS_ENDPOINT_URL_S3", "http://b"}}));
  EXPECT_EQ(specific.region(), "us-west-2");
  EXPECT_EQ(specific.endpoint(), "http://b");
  // A key id without its secret is a config error naming the variable.
  try {
    AwsCredentialProvider half(Config({{"AWS_ACCESS_KEY_ID", "A"}}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
  }
  // Nothing at all, metadata disabled: says where it looked.
  AwsCredentialProvider none(Config({{"AWS_EC2_METADATA_DISABLED", "true"},
                                     {"HOME", "/nonexistent"},
                                     {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"},
                                     {"AWS_CONFIG_FILE", "/nonexistent"}}));
  EXPECT_THROW(none.current(), Error);
  EXPECT_EQ(none.region(), "us-east-1");
}

TEST(ObjectStorageHelpers, EncodingsAndXml) {
  EXPECT_EQ(url_encode("uploads/a b+c", true), "uploads/a%20b%2Bc");
  EXPECT_EQ(url_encode("uploads/a", false), "uploads%2Fa");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(xml_value("<Error><Code>NoSuchBucket</Code><Message>x</Message></Error>", "Code"),
            "NoSuchBucket");
  EXPECT_EQ(xml_value("<a/>", "Code"), "");
  EXPECT_EQ(base64url("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url("hello"), "aGVsbG8");
  EXPECT_EQ(base64url(R"({"alg":"RS256","typ":"JWT"})"), "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9");
}

TEST(ObjectStorageHelpers, SigningRefusesWhatIsNotAKey) {
  EXPECT_THROW(rs256_sign("not a pem", "data"), Error);
}

TEST(ObjectStorageHelpers, TransportFailuresAreUnavailableNamingTheHostOnly) {
  HttpRequest r;
  r.url = "http://127.0.0.1:9/bucket?X-Amz-Signature=secret";
  r.connect_timeout_seconds = 2;
  try {
    perform(r);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unavailable);
    std::string what = e.what();
    // The host tells the operator what is unreachable; the path (bucket, object keys) and the
    // query (signatures) stay in the log, since this text can reach a client in a 503.
    EXPECT_NE(what.find("http://127.0.0.1:9"), std::string::npos) << what;
    EXPECT_EQ(what.find("/bucket"), std::string::npos) << what;
    EXPECT_EQ(what.find("secret"), std::string::npos) << "queries may carry signatures: " << what;
  }
}

}  // namespace
}  // namespace sra::storage
