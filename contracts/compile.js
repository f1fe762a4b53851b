#!/usr/bin/env node
// Compile contracts/src/**/*.sol offline with the solc-js bundled in node_modules and write one
// committed artifact per contract to contracts/build/<Name>.json.
//
//   node contracts/compile.js           write the artifacts
//   node contracts/compile.js --check   exit 1 if the committed artifacts differ from a fresh
//                                       compile (sources, settings or compiler changed)
//
// Nothing is downloaded: solc-js compiles with its bundled soljson, and imports resolve from
// contracts/ or node_modules/. Source unit names are repository-relative so the metadata hash
// (and with it the bytecode) is the same on every machine.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const CONTRACTS = __dirname;
const REPO = path.dirname(CONTRACTS);
const SRC = path.join(CONTRACTS, "src");
const BUILD = path.join(CONTRACTS, "build");
const NODE_MODULES = path.join(REPO, "node_modules");

// Pinned so the bytecode does not change with the compiler's default target. Cancun is the
// oldest fork with transient storage (EIP-1153), which the reentrancy guard uses.
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 10000 },
  metadata: { bytecodeHash: "ipfs" },
  outputSelection: {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
  },
};

function walk(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return walk(full);
      return entry.name.endsWith(".sol") ? [full] : [];
    });
}

function unitName(file) {
  return path.relative(REPO, file).split(path.sep).join("/");
}

// Every file solc asks for, so the source hash covers imported library code too.
const loaded = new Map();

function findImport(name) {
  const candidates = name.startsWith("@")
    ? [path.join(NODE_MODULES, name)]
    : [path.join(REPO, name), path.join(NODE_MODULES, name)];
  for (const file of candidates) {
    const inside = file.startsWith(REPO + path.sep);
    if (inside && fs.existsSync(file)) {
      const contents = fs.readFileSync(file, "utf8");
      loaded.set(name, contents);
      return { contents };
    }
  }
  return { error: `not found: ${name} (looked in contracts/ and node_modules/)` };
}

function compile() {
  const sources = {};
  for (const file of walk(SRC)) {
    const content = fs.readFileSync(file, "utf8");
    sources[unitName(file)] = { content };
    loaded.set(unitName(file), content);
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));

  const problems = output.errors || [];
  for (const problem of problems) {
    // OpenZeppelin's transient-storage warning is about guards misused across calls; its own
    // reentrancy guard is the documented safe case, so library warnings stay quiet.
    const file = problem.sourceLocation && problem.sourceLocation.file;
    if (problem.severity === "warning" && file && file.startsWith("@openzeppelin/")) continue;
    process.stderr.write(problem.formattedMessage || problem.message);
  }
  if (problems.some((p) => p.severity === "error")) {
    process.stderr.write("compile.js: compilation failed\n");
    process.exit(2);
  }

  const hash = crypto.createHash("sha256");
  hash.update(JSON.stringify({ compiler: solc.version(), settings: SETTINGS }));
  for (const name of [...loaded.keys()].sort()) {
    hash.update(`\0${name}\0${loaded.get(name)}`);
  }
  const sourceHash = hash.digest("hex");

  const artifacts = new Map();
  for (const sourceName of Object.keys(sources)) {
    for (const [contractName, out] of Object.entries(output.contracts[sourceName] || {})) {
      if (!out.evm.bytecode.object) continue; // interfaces and abstract contracts
      if (artifacts.has(contractName)) {
        process.stderr.write(`compile.js: two contracts named ${contractName}\n`);
        process.exit(2);
      }
      const artifact = {
        contractName,
        sourceName,
        compiler: { version: solc.version(), settings: SETTINGS },
        sourceHash,
        abi: out.abi,
        bytecode: "0x" + out.evm.bytecode.object,
        deployedBytecode: "0x" + out.evm.deployedBytecode.object,
      };
      artifacts.set(`${contractName}.json`, JSON.stringify(artifact, null, 2) + "\n");
    }
  }
  return artifacts;
}

function existing() {
  if (!fs.existsSync(BUILD)) return new Map();
  return new Map(
    fs
      .readdirSync(BUILD)
      .filter((name) => name.endsWith(".json"))
      .map((name) => [name, fs.readFileSync(path.join(BUILD, name), "utf8")]),
  );
}

function main() {
  const check = process.argv.includes("--check");
  const fresh = compile();
  const committed = existing();

  if (check) {
    const stale = [];
    for (const [name, text] of fresh) {
      if (committed.get(name) !== text) stale.push(`${name} differs from a fresh compile`);
    }
    for (const name of committed.keys()) {
      if (!fresh.has(name)) stale.push(`${name} has no contract in contracts/src`);
    }
    if (stale.length) {
      for (const line of stale) process.stderr.write(`contracts/build/${line}\n`);
      process.stderr.write("run `node contracts/compile.js` and commit contracts/build\n");
      process.exit(1);
    }
    console.log(`contracts/build is up to date (${fresh.size} artifacts, ${solc.version()})`);
    return;
  }

  fs.mkdirSync(BUILD, { recursive: true });
  for (const name of committed.keys()) {
    if (!fresh.has(name)) fs.unlinkSync(path.join(BUILD, name));
  }
  for (const [name, text] of fresh) fs.writeFileSync(path.join(BUILD, name), text);
  console.log(`wrote ${fresh.size} artifacts to contracts/build (${solc.version()})`);
}

main();
