// Reference bytes for the Velocity venue, made by the official Anchor TypeScript coder
// (@anchor-lang/core) from the same IDL subset the Python codec reads. See README.md.
//
//   cd tools/velocity_fixtures && npm ci && node make_fixtures.js
//
// Writes tests/fixtures/velocity/{accounts,instructions,metadata}.json. Values are written in a
// neutral JSON form (integers as decimal strings, pubkeys base58, u8 arrays/bytes as hex, enum
// variants by name, structs keyed by the IDL's field names) that tests/test_velocity_codec.py
// turns into the Python codec's values; every encoded buffer is decoded back by the coder and
// must give the same value (a fixture the coder cannot read back is not written).
"use strict";

const fs = require("fs");
const path = require("path");
const { BorshCoder, BN, web3 } = require("@anchor-lang/core");
const pm = require("@solana-program/program-metadata");

const ROOT = path.resolve(__dirname, "..", "..");
const IDL_PATH = path.join(ROOT, "execution", "velocity", "idl", "velocity-2.165.0.subset.json");
const OUT = path.join(ROOT, "tests", "fixtures", "velocity");
const idlText = fs.readFileSync(IDL_PATH, "utf8");
const idl = JSON.parse(idlText);
const coder = new BorshCoder(idl);
const types = Object.fromEntries(idl.types.map((t) => [t.name, t]));

// ---------------------------------------------------------------- deterministic randomness
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const INTS = { u8: [8, false], i8: [8, true], u16: [16, false], i16: [16, true], u32: [32, false],
  i32: [32, true], u64: [64, false], i64: [64, true], u128: [128, false], i128: [128, true] };
function randInt(rng, ty) {
  const [bits, signed] = INTS[ty];
  const lo = signed ? -(1n << BigInt(bits - 1)) : 0n;
  const hi = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  const r = rng();
  if (r < 0.15) return 0n;
  if (r < 0.25) return hi;
  if (r < 0.32) return lo;
  let v = 0n;
  for (let i = 0; i < bits; i += 16) v = (v << 16n) | BigInt(Math.floor(rng() * 65536));
  v = v & ((1n << BigInt(bits)) - 1n);
  if (signed && v > hi) v -= 1n << BigInt(bits);
  return v;
}
function randBytes(rng, n) {
  return Buffer.from(Array.from({ length: n }, () => Math.floor(rng() * 256)));
}

// ---------------------------------------------------------------- neutral <-> TS values
function genNeutral(ty, rng) {
  if (typeof ty === "string") {
    if (ty in INTS) return randInt(rng, ty).toString();
    if (ty === "bool") return rng() < 0.5;
    if (ty === "pubkey") return new web3.PublicKey(randBytes(rng, 32)).toBase58();
    if (ty === "bytes") return randBytes(rng, Math.floor(rng() * 6)).toString("hex");
    if (ty === "string") return "s" + Math.floor(rng() * 1000);
    throw new Error(`unsupported ${ty}`);
  }
  if (ty.option !== undefined) return rng() < 0.4 ? null : genNeutral(ty.option, rng);
  if (ty.array !== undefined) {
    const [elem, n] = ty.array;
    if (elem === "u8") return randBytes(rng, n).toString("hex");
    return Array.from({ length: n }, () => genNeutral(elem, rng));
  }
  if (ty.vec !== undefined) {
    const n = Math.floor(rng() * 4);
    if (ty.vec === "u8") return randBytes(rng, n).toString("hex");
    return Array.from({ length: n }, () => genNeutral(ty.vec, rng));
  }
  const td = types[ty.defined.name];
  if (td.type.kind === "enum") {
    const v = td.type.variants[Math.floor(rng() * td.type.variants.length)];
    return v.name;
  }
  const out = {};
  for (const f of td.type.fields) out[f.name] = genNeutral(f.type, rng);
  return out;
}

function toTs(ty, v) {
  if (typeof ty === "string") {
    if (ty in INTS) return INTS[ty][0] > 32 ? new BN(v) : Number(v);
    if (ty === "bool") return v;
    if (ty === "pubkey") return new web3.PublicKey(v);
    if (ty === "bytes") return Buffer.from(v, "hex");
    return v;
  }
  if (ty.option !== undefined) return v === null ? null : toTs(ty.option, v);
  if (ty.array !== undefined || ty.vec !== undefined) {
    const elem = ty.array !== undefined ? ty.array[0] : ty.vec;
    if (elem === "u8") return ty.vec !== undefined ? Buffer.from(v, "hex") : Array.from(Buffer.from(v, "hex"));
    return v.map((x) => toTs(elem, x));
  }
  const td = types[ty.defined.name];
  if (td.type.kind === "enum") return { [v]: {} };
  const out = {};
  for (const f of td.type.fields) out[f.name] = toTs(f.type, v[f.name]);
  return out;
}

function fromTs(ty, v) {
  if (typeof ty === "string") {
    if (ty in INTS) return v.toString();
    if (ty === "bool") return v;
    if (ty === "pubkey") return v.toBase58();
    if (ty === "bytes") return Buffer.from(v).toString("hex");
    return v;
  }
  if (ty.option !== undefined) return v === null || v === undefined ? null : fromTs(ty.option, v);
  if (ty.array !== undefined || ty.vec !== undefined) {
    const elem = ty.array !== undefined ? ty.array[0] : ty.vec;
    if (elem === "u8") return Buffer.from(v).toString("hex");
    return v.map((x) => fromTs(elem, x));
  }
  const td = types[ty.defined.name];
  if (td.type.kind === "enum") return Object.keys(v)[0];
  const out = {};
  for (const f of td.type.fields) out[f.name] = fromTs(f.type, v[f.name]);
  return out;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// ---------------------------------------------------------------- accounts
function accountFixtures() {
  const out = [];
  for (const acc of idl.accounts) {
    const ty = { defined: { name: acc.name } };
    for (let sample = 0; sample < 3; sample++) {
      const rng = mulberry32(1000 * (sample + 1) + acc.name.length * 7919 + acc.name.charCodeAt(0));
      const value = genNeutral(ty, rng);
      // coder.accounts.encode is async in Anchor 1.x
      out.push({ account: acc.name, sample, value, ts: toTs(ty, value) });
    }
  }
  return out;
}

// ---------------------------------------------------------------- instructions
const LIMIT_BUY = {
  order_type: "Limit", market_type: "Perp", direction: "Long", user_order_id: "7",
  base_asset_amount: "1234000000", price: "150120000", market_index: "0", reduce_only: false,
  post_only: "MustPostOnly", bit_flags: "0", max_ts: null, trigger_price: null,
  trigger_condition: "Above", oracle_price_offset: null, auction_duration: null,
  auction_start_price: null, auction_end_price: null, builder_idx: null, builder_fee_tenth_bps: null,
};
const STOP_SELL = { ...LIMIT_BUY, order_type: "TriggerMarket", direction: "Short", user_order_id: "8",
  price: "0", reduce_only: true, post_only: "None", trigger_price: "148000000", trigger_condition: "Below" };
const TP_SELL = { ...LIMIT_BUY, direction: "Short", user_order_id: "9", price: "156900000",
  reduce_only: true, post_only: "None" };
const MODIFY = {
  direction: null, base_asset_amount: null, price: "150110000", reduce_only: null, post_only: null,
  bit_flags: null, max_ts: null, trigger_price: null, trigger_condition: null, oracle_price_offset: null,
  auction_duration: null, auction_start_price: null, auction_end_price: null, policy: null,
};
const CASES = [
  ["place_perp_order", { params: LIMIT_BUY }],
  ["place_perp_order", { params: STOP_SELL }],
  ["place_perp_order", { params: TP_SELL }],
  ["place_orders", { params: [LIMIT_BUY, STOP_SELL, TP_SELL] }],
  ["place_orders", { params: [] }],
  ["cancel_order", { order_id: "42" }],
  ["cancel_order", { order_id: null }],
  ["cancel_order_by_user_id", { user_order_id: "7" }],
  ["cancel_orders", { market_type: "Perp", market_index: "0", direction: null }],
  ["cancel_orders", { market_type: null, market_index: null, direction: null }],
  ["cancel_orders_by_ids", { order_ids: ["42", "43", "4294967295"] }],
  ["modify_order", { order_id: "42", modify_order_params: MODIFY }],
  ["modify_order", { order_id: "42", modify_order_params: { ...MODIFY, price: null, trigger_price: "147500000" } }],
  ["modify_order_by_user_id", { user_order_id: "8", modify_order_params: { ...MODIFY, base_asset_amount: "2000000000" } }],
  ["update_user_delegate", { _sub_account_id: "0", delegate: "11111111111111111111111111111111" }],
  ["update_user_delegate", { _sub_account_id: "3", delegate: "vELoC1audYbSYVRXn1vPaV8Axoa9oU6BYmNGZZBDZ1P" }],
];

function instructionFixtures() {
  const out = [];
  const cases = CASES.map(([name, args]) => [name, args]);
  for (const ix of idl.instructions) {
    for (let sample = 0; sample < 4; sample++) {
      const rng = mulberry32(77 + sample * 131 + ix.name.length * 17);
      const args = {};
      for (const a of ix.args) args[a.name] = genNeutral(a.type, rng);
      cases.push([ix.name, args]);
    }
  }
  for (const [name, args] of cases) {
    const ix = idl.instructions.find((i) => i.name === name);
    const tsArgs = {};
    for (const a of ix.args) tsArgs[a.name] = toTs(a.type, args[a.name]);
    const data = coder.instruction.encode(name, tsArgs);
    const back = coder.instruction.decode(data);
    const backArgs = {};
    for (const a of ix.args) backArgs[a.name] = fromTs(a.type, back.data[a.name]);
    if (back.name !== name || !same(backArgs, args)) throw new Error(`round trip failed for ${name}`);
    out.push({ instruction: name, args, data_hex: Buffer.from(data).toString("hex") });
  }
  return out;
}

// ---------------------------------------------------------------- program-metadata account
async function metadataFixture() {
  const program = idl.address;
  const [address] = await pm.findMetadataPda({ program, authority: null, seed: "idl" });
  const packed = pm.packDirectData({ content: idlText });
  const account = pm.getMetadataEncoder().encode({
    program,
    authority: null,
    mutable: true,
    canonical: true,
    seed: "idl",
    encoding: packed.encoding,
    compression: packed.compression,
    format: pm.Format.Json,
    dataSource: packed.dataSource,
    dataLength: packed.data.length,
    data: packed.data,
  });
  const decoded = pm.getMetadataDecoder().decode(account);
  if (pm.unpackDirectData(decoded) !== idlText) throw new Error("metadata round trip failed");
  return {
    program,
    metadata_program: pm.PROGRAM_METADATA_PROGRAM_ADDRESS,
    address,
    seed: "idl",
    idl_file: path.relative(ROOT, IDL_PATH),
    data_hex: Buffer.from(account).toString("hex"),
  };
}

// coder.accounts.encode() writes into a fixed 1000-byte scratch buffer ("TODO: use a tighter
// buffer" in @anchor-lang/core 1.0.2), too small for State/PerpMarket/User: this is the same
// call, the coder's own layout and discriminator, with a scratch buffer large enough.
function encodeAccount(name, value) {
  const { layout } = coder.accounts.accountLayouts.get(name);
  const scratch = Buffer.alloc(1 << 16);
  const len = layout.encode(value, scratch);
  return Buffer.concat([coder.accounts.accountDiscriminator(name), scratch.subarray(0, len)]);
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const accounts = [];
  for (const f of accountFixtures()) {
    const ty = { defined: { name: f.account } };
    const data = encodeAccount(f.account, f.ts);
    const back = coder.accounts.decode(f.account, data);
    if (!same(fromTs(ty, back), f.value)) throw new Error(`round trip failed for ${f.account}`);
    accounts.push({ account: f.account, sample: f.sample, value: f.value, data_hex: Buffer.from(data).toString("hex") });
  }
  const meta = {
    generator: "tools/velocity_fixtures/make_fixtures.js",
    coder: `@anchor-lang/core ${require("@anchor-lang/core/package.json").version}`,
    idl: path.relative(ROOT, IDL_PATH),
    idl_version: idl.metadata.version,
  };
  const write = (name, items) =>
    fs.writeFileSync(path.join(OUT, name), JSON.stringify({ ...meta, items }, null, 1) + "\n");
  write("accounts.json", accounts);
  write("instructions.json", instructionFixtures());
  write("metadata.json", [await metadataFixture()]);
  console.log(`wrote ${accounts.length} account and ${CASES.length + idl.instructions.length * 4} instruction fixtures to ${path.relative(ROOT, OUT)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
