// Continue's own loader on a config.yaml: `node continue.mjs FILE` prints JSON
// {"parsed": <what configYamlSchema kept>, "problems": [<validateConfigYaml messages>]}.
// Unknown keys are dropped silently by the schema: the caller compares key by key.
import { readFileSync } from "node:fs";
import { parseConfigYaml, validateConfigYaml } from "@continuedev/config-yaml";

const parsed = parseConfigYaml(readFileSync(process.argv[2], "utf-8"));
const problems = validateConfigYaml(parsed).map((e) => `${e.fatal ? "fatal" : "warning"}: ${e.message}`);
console.log(JSON.stringify({ parsed, problems }));
