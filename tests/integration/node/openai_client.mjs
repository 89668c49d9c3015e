// Transcribes with OpenAI's official Node SDK against our server and prints what came back.
// Usage: node openai_client.mjs BASE_URL AUDIO_FILE
import fs from "node:fs";
import OpenAI, { toFile } from "openai";

const [baseURL, audio] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "not-needed", maxRetries: 0 });
const file = () => fs.createReadStream(audio);
const out = {};

out.json = (await client.audio.transcriptions.create({ model: "whisper-1", file: file() })).text;
out.text = await client.audio.transcriptions.create({ model: "whisper-1", file: file(), response_format: "text" });
out.srt = await client.audio.transcriptions.create({ model: "whisper-1", file: file(), response_format: "srt" });
out.vtt = await client.audio.transcriptions.create({ model: "whisper-1", file: file(), response_format: "vtt" });
out.verbose = await client.audio.transcriptions.create({
  model: "whisper-1", file: file(), response_format: "verbose_json", timestamp_granularities: ["segment"],
});
out.stream = [];
for await (const event of await client.audio.transcriptions.create({ model: "whisper-1", file: file(), stream: true })) {
  out.stream.push(event);
}
out.errors = {};
async function status(call) {
  try { await call(); return 200; } catch (e) { return e.status; }
}
out.errors.model = await status(() => client.audio.transcriptions.create({ model: "gpt-9", file: file() }));
out.errors.file = await status(async () => client.audio.transcriptions.create({
  model: "whisper-1", file: await toFile(Buffer.from("not audio"), "notes.txt"),
}));
out.errors.too_large = await status(async () => client.audio.transcriptions.create({
  model: "whisper-1", file: await toFile(Buffer.alloc(3_000_000), "big.wav"),
}));
process.stdout.write(JSON.stringify(out));
