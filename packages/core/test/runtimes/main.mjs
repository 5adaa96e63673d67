// Runs the scenario against the compiled packages and prints its transcript as JSON.
// Used unchanged by Node (20 and 24), Bun and Deno (Deno resolves @harbormq/codec through
// import-map.json); the browser page (index.html) does the same with an import map.
import * as core from "../../dist/index.js";
import * as codec from "../../../codec/dist/index.js";
import { runScenario } from "./scenario.mjs";

const transcript = runScenario({ core, codec });
console.log(JSON.stringify(transcript));
