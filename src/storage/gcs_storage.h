// GcsStorage: uploaded audio in a Google Cloud Storage bucket through the JSON API, the seed's
// GoogleCloudStorage.
//
// Reads GOOGLE_CLOUD_STORAGE_PROJECT_ID, GOOGLE_CLOUD_STORAGE_BUCKET_NAME (required) and
// GOOGLE_CLOUD_STORAGE_FILE_PREFIX (the seed's), credentials as gcs_credentials.h says,
// STORAGE_EMULATOR_HOST (an emulator's base URL, as the official clients honour it),
// GOOGLE_CLOUD_STORAGE_ENDPOINT (another API base URL), GOOGLE_CLOUD_STORAGE_CHUNK_SIZE
// (resumable upload piece, default 8 MiB, a multiple of 256 KiB) and
// GOOGLE_CLOUD_STORAGE_MAX_ATTEMPTS. A file up to one chunk is sent in one request; a larger one
// as a resumable upload, cancelled if the upload is abandoned. Retries 5xx, 429 and transport
// failures with backoff; never 4xx. Safe for concurrent use.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/file_storage.h"

namespace sra {

std::unique_ptr<FileStorage> make_gcs_storage(const Config& config);

}  // namespace sra
