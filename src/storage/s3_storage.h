// S3Storage: uploaded audio in an S3 bucket (AWS, MinIO, Ceph, R2, ... ), the seed's S3Storage.
//
// Reads S3_STORAGE_BUCKET_NAME (required) and S3_STORAGE_FILE_PREFIX (the seed's), credentials,
// region and endpoint as AWS's SDKs do (see aws_credentials.h), S3_STORAGE_FORCE_PATH_STYLE
// (`endpoint/bucket/key` instead of `bucket.endpoint/key`), S3_STORAGE_PART_SIZE (multipart
// piece, default 8 MiB) and S3_STORAGE_MAX_ATTEMPTS (default 5). Requests are signed with
// libcurl's SigV4, payloads hashed with SHA-256. Uploads stream: up to one part is held in memory;
// a file larger than a part goes up as a multipart upload, aborted if the upload is abandoned.
// 5xx, 429 and transport failures are retried with exponential backoff and jitter; 4xx never.
// Errors say what is wrong (no such bucket, access denied, bad credentials, endpoint
// unreachable) as sra::Error(unavailable). Safe for concurrent use.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/file_storage.h"

namespace sra {

std::unique_ptr<FileStorage> make_s3_storage(const Config& config);

}  // namespace sra
