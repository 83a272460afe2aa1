// Cline's own code on its settings: `node cline.mjs PROVIDERS_JSON [GLOBAL_STATE_JSON]` prints
// {"parsed": what StoredProviderSettingsSchema keeps, "read": what ProviderSettingsManager reads
// (it would treat an invalid file as empty), "config": its provider config for "ollama",
// "legacy": Cline's migration of a legacy globalState.json into a fresh providers.json}.
// An invalid providers.json: the schema's issues on stderr, exit 1.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ProviderSettingsManager,
  StoredProviderSettingsSchema,
  migrateLegacyProviderSettings,
} from "@cline/core";

const [providersFile, globalStateFile] = process.argv.slice(2);
const result = StoredProviderSettingsSchema.safeParse(JSON.parse(readFileSync(providersFile, "utf-8")));
if (!result.success) {
  console.error(JSON.stringify(result.error.issues));
  process.exit(1);
}
const manager = new ProviderSettingsManager({ filePath: providersFile });
const { knownModels, ...config } = manager.getProviderConfig("ollama") ?? {};
const out = { parsed: result.data, read: manager.read(), config };
if (globalStateFile) {
  const dataDir = mkdtempSync(join(tmpdir(), "cline-legacy-"));
  const fresh = new ProviderSettingsManager({ filePath: join(dataDir, "providers.json"), dataDir });
  migrateLegacyProviderSettings({ providerSettingsManager: fresh, dataDir, globalStatePath: globalStateFile });
  out.legacy = fresh.read();
}
console.log(JSON.stringify(out));
