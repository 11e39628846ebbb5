// Compile the Solidity contracts with the pinned npm `solc` and write the artifacts the app
// deploys from at run time (solc is a dev tool only), and those only tests deploy.
// Run: `npm run compile-contracts`.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, "src", "chaingate", "contracts");
const testOutDir = join(root, "tests", "support", "contracts");

// source path (relative to repo root) -> contract names to export, and where
const contracts = {
  "contracts/DemoToken.sol": { names: ["DemoToken"], out: outDir },
  "contracts/test/NftLikeTransfer.sol": { names: ["NftLikeTransfer"], out: outDir },
  "contracts/test/InternalPayments.sol": {
    names: ["ConstructorPayer", "Forwarder", "RevertingPayer"],
    out: testOutDir,
  },
};

const input = {
  language: "Solidity",
  sources: Object.fromEntries(
    Object.keys(contracts).map((path) => [path, { content: readFileSync(join(root, path), "utf8") }]),
  ),
  settings: {
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 200 },
    // No metadata hash: the bytecode then depends only on the source and settings, so the
    // committed artifacts are reproducible byte for byte.
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors ?? []).filter((e) => e.severity === "error");
for (const message of output.errors ?? []) {
  console.error(message.formattedMessage);
}
if (errors.length > 0) {
  process.exit(1);
}

const solcVersion = solc.version();
for (const [path, { names, out }] of Object.entries(contracts)) {
  mkdirSync(out, { recursive: true });
  for (const contractName of names) {
    const compiled = output.contracts[path][contractName];
    const artifact = {
      contractName,
      abi: compiled.abi,
      bytecode: "0x" + compiled.evm.bytecode.object,
      solcVersion,
    };
    const target = join(out, `${contractName}.json`);
    writeFileSync(target, JSON.stringify(artifact, null, 2) + "\n");
    console.log(`wrote ${target.slice(root.length + 1)} (${compiled.evm.bytecode.object.length / 2} bytes)`);
  }
}
