// whisper.cpp's published ggml models (every size and quantization in ggerganov/whisper.cpp on
// Hugging Face) as catalog entries: appended to the catalog, or attached as a second source to an
// entry of the same name that the package index already carries. Called once, while the catalog
// is built; not for other callers.
#pragma once

#include <vector>

#include "models/model_catalog.h"

namespace sra {

void add_whispercpp_models(std::vector<CatalogModel>& catalog);

}  // namespace sra
