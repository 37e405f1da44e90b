// A QR code of a text, drawn as SVG: our own encoder of ISO/IEC 18004 for
// what the enrolment page needs, and no more. Byte mode (the text as
// UTF-8), error correction level M (15% of the symbol may be lost), the
// smallest of versions 1 to 40 that holds the text, and of the eight masks
// the one the standard's penalty rules score lowest. The names follow the
// standard: a module is one square, a codeword one byte.

// Level M, by version (index 1 to 40): error correction codewords per
// block, and the number of blocks (ISO/IEC 18004, table 9).
const eccPerBlock = [0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28,
  28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28];
const blocks = [0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31,
  33, 35, 37, 38, 40, 43, 45, 47, 49];

// encode answers the symbol for text: { version, mask, size, dark }, dark
// a row-major array of booleans, size x size.
export function encode(text) {
  const data = new TextEncoder().encode(text);
  let version = 1;
  while (data.length * 8 + 4 + countBits(version) > dataCodewords(version) * 8) {
    if (++version > 40) throw new Error("too long for a QR code");
  }
  const codewords = interleave(version, dataBits(data, version));
  const base = new Symbol(version);
  base.placeCodewords(codewords);
  let best = null;
  for (let mask = 0; mask < 8; mask++) {
    const s = base.copy();
    s.applyMask(mask);
    s.placeFormat(mask);
    const score = s.penalty();
    if (!best || score < best.score) best = { symbol: s, mask, score };
  }
  return { version, mask: best.mask, size: best.symbol.size, dark: best.symbol.dark };
}

// The character count takes 8 bits up to version 9, 16 from version 10.
const countBits = (version) => (version < 10 ? 8 : 16);

// rawModules is how many modules of a version carry codewords: all but
// the finder, timing and alignment patterns and the format and version
// information.
function rawModules(v) {
  let n = (16 * v + 128) * v + 64;
  if (v >= 2) {
    const align = Math.floor(v / 7) + 2;
    n -= (25 * align - 10) * align - 55;
    if (v >= 7) n -= 36;
  }
  return n;
}
const dataCodewords = (v) => Math.floor(rawModules(v) / 8) - eccPerBlock[v] * blocks[v];

// dataBits is the data codewords: mode 0100 (byte), the count, the bytes,
// a terminator, then the pad codewords 0xEC and 0x11 in turn.
function dataBits(data, version) {
  const bits = [];
  const put = (value, n) => { for (let i = n - 1; i >= 0; i--) bits.push((value >>> i) & 1); };
  put(0b0100, 4);
  put(data.length, countBits(version));
  for (const b of data) put(b, 8);
  const capacity = dataCodewords(version) * 8;
  put(0, Math.min(4, capacity - bits.length));
  put(0, (8 - (bits.length % 8)) % 8);
  for (let pad = 0xec; bits.length < capacity; pad ^= 0xec ^ 0x11) put(pad, 8);
  const bytes = [];
  for (let i = 0; i < bits.length; i += 8) bytes.push(bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));
  return bytes;
}

// interleave splits the data into the version's blocks (the short ones
// first, the others one codeword longer), adds each block's error
// correction, and takes the blocks' codewords in turn.
function interleave(version, data) {
  const n = blocks[version];
  const ecc = eccPerBlock[version];
  const total = Math.floor(rawModules(version) / 8);
  const short = n - (total % n);
  const shortData = Math.floor(total / n) - ecc;
  const divisor = generator(ecc);
  const split = [];
  for (let i = 0, at = 0; i < n; i++) {
    const len = shortData + (i < short ? 0 : 1);
    const block = data.slice(at, at + len);
    at += len;
    split.push({ data: block, ecc: remainder(block, divisor) });
  }
  const out = [];
  for (let i = 0; i <= shortData; i++) for (const b of split) if (i < b.data.length) out.push(b.data[i]);
  for (let i = 0; i < ecc; i++) for (const b of split) out.push(b.ecc[i]);
  return out;
}

// Reed-Solomon over GF(256) with the polynomial x^8+x^4+x^3+x^2+1.
const exp = new Uint8Array(512);
const log = new Uint8Array(256);
for (let i = 0, x = 1; i < 255; i++) {
  exp[i] = exp[i + 255] = x;
  log[x] = i;
  x = (x << 1) ^ (x & 0x80 ? 0x11d : 0);
}
const mul = (a, b) => (a && b ? exp[log[a] + log[b]] : 0);

// generator is (x - a^0)(x - a^1)...(x - a^(degree-1)), highest power first.
function generator(degree) {
  let g = [1];
  for (let i = 0; i < degree; i++) {
    const next = new Array(g.length + 1).fill(0);
    g.forEach((c, j) => {
      next[j] ^= c;
      next[j + 1] ^= mul(c, exp[i]);
    });
    g = next;
  }
  return g;
}

// remainder is data times x^degree modulo the generator: the block's error
// correction codewords.
function remainder(data, divisor) {
  const rem = new Array(divisor.length - 1).fill(0);
  for (const b of data) {
    const factor = b ^ rem.shift();
    rem.push(0);
    for (let j = 0; j < rem.length; j++) rem[j] ^= mul(divisor[j + 1], factor);
  }
  return rem;
}

// A symbol being drawn: its modules, and which of them are function
// patterns (finders, timing, alignment, format and version information),
// which no codeword nor mask touches.
class Symbol {
  constructor(version) {
    if (version === undefined) return;
    this.version = version;
    this.size = version * 4 + 17;
    this.dark = new Array(this.size * this.size).fill(false);
    this.fixed = new Array(this.size * this.size).fill(false);
    const last = this.size - 7;
    for (const [x, y] of [[3, 3], [last + 3, 3], [3, last + 3]]) this.finder(x, y);
    for (let i = 8; i < this.size - 8; i++) {
      this.set(6, i, i % 2 === 0);
      this.set(i, 6, i % 2 === 0);
    }
    // Alignment patterns at every pair of centres but the finders' three
    // corners; on the timing lines they agree with the timing pattern.
    const at = alignmentCentres(version);
    const k = at.length - 1;
    at.forEach((y, i) => at.forEach((x, j) => {
      if (!((i === 0 && j === 0) || (i === 0 && j === k) || (i === k && j === 0))) this.alignment(x, y);
    }));
    this.placeFormat(0); // reserves the format modules; drawn again with the chosen mask
    this.placeVersion();
  }

  copy() {
    const s = new Symbol();
    Object.assign(s, this, { dark: this.dark.slice(), fixed: this.fixed });
    return s;
  }

  set(x, y, dark) {
    this.dark[y * this.size + x] = dark;
    this.fixed[y * this.size + x] = true;
  }

  // finder draws a finder pattern centred on (x, y) with its light
  // separator, clipped at the symbol's edges.
  finder(x, y) {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const d = Math.max(Math.abs(dx), Math.abs(dy));
        if (x + dx >= 0 && x + dx < this.size && y + dy >= 0 && y + dy < this.size) this.set(x + dx, y + dy, d !== 2 && d !== 4);
      }
    }
  }

  alignment(x, y) {
    for (let dy = -2; dy <= 2; dy++) {
      for (let dx = -2; dx <= 2; dx++) this.set(x + dx, y + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
    }
  }

  // placeFormat draws the level and mask, BCH-protected, in both copies,
  // and the one module that is always dark.
  placeFormat(mask) {
    const data = (0b00 << 3) | mask; // level M is 00
    let rem = data;
    for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
    const bits = ((data << 10) | rem) ^ 0x5412;
    const bit = (i) => ((bits >>> i) & 1) === 1;
    const n = this.size;
    for (let i = 0; i <= 5; i++) this.set(8, i, bit(i));
    this.set(8, 7, bit(6));
    this.set(8, 8, bit(7));
    this.set(7, 8, bit(8));
    for (let i = 9; i < 15; i++) this.set(14 - i, 8, bit(i));
    for (let i = 0; i < 8; i++) this.set(n - 1 - i, 8, bit(i));
    for (let i = 8; i < 15; i++) this.set(8, n - 15 + i, bit(i));
    this.set(8, n - 8, true);
  }

  // placeVersion draws the version, BCH-protected, in its two blocks
  // (versions 7 and up).
  placeVersion() {
    if (this.version < 7) return;
    let rem = this.version;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    const bits = (this.version << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const dark = ((bits >>> i) & 1) === 1;
      const a = this.size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      this.set(a, b, dark);
      this.set(b, a, dark);
    }
  }

  // placeCodewords fills the free modules two columns at a time, from the
  // bottom right, upwards then downwards, skipping the vertical timing
  // column; the bits left over (the remainder) stay light.
  placeCodewords(codewords) {
    const n = this.size;
    let i = 0;
    for (let right = n - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5;
      const upward = ((right + 1) & 2) === 0;
      for (let step = 0; step < n; step++) {
        const y = upward ? n - 1 - step : step;
        for (const x of [right, right - 1]) {
          if (this.fixed[y * n + x]) continue;
          if (i < codewords.length * 8) this.dark[y * n + x] = ((codewords[i >>> 3] >>> (7 - (i & 7))) & 1) === 1;
          i++;
        }
      }
    }
  }

  applyMask(mask) {
    const test = masks[mask];
    for (let y = 0; y < this.size; y++) {
      for (let x = 0; x < this.size; x++) {
        if (!this.fixed[y * this.size + x] && test(x, y)) this.dark[y * this.size + x] = !this.dark[y * this.size + x];
      }
    }
  }

  // penalty scores the symbol by the standard's four rules: runs of five
  // or more of one colour in a line, 2x2 blocks of one colour, patterns
  // that look like a finder, and dark modules far from half.
  penalty() {
    const n = this.size;
    const at = (x, y) => this.dark[y * n + x];
    let score = 0;
    for (const line of lines(n)) {
      const get = (i) => at(...line(i));
      let run = 1;
      for (let i = 1; i <= n; i++) {
        if (i < n && get(i) === get(i - 1)) {
          run++;
          continue;
        }
        if (run >= 5) score += 3 + run - 5;
        run = 1;
      }
      for (let i = 0; i + 7 <= n; i++) {
        const finderLike = [1, 0, 1, 1, 1, 0, 1].every((b, k) => get(i + k) === (b === 1));
        const light = (from, to) => { for (let k = from; k < to; k++) if (k >= 0 && k < n && get(k)) return false; return true; };
        if (finderLike && (light(i - 4, i) || light(i + 7, i + 11))) score += 40;
      }
    }
    for (let y = 0; y < n - 1; y++) {
      for (let x = 0; x < n - 1; x++) {
        const c = at(x, y);
        if (at(x + 1, y) === c && at(x, y + 1) === c && at(x + 1, y + 1) === c) score += 3;
      }
    }
    const dark = this.dark.filter(Boolean).length;
    score += 10 * Math.floor(Math.abs(dark * 100 / (n * n) - 50) / 5);
    return score;
  }
}

// lines are the symbol's rows and columns, each a function from a position
// along it to (x, y).
function lines(n) {
  const out = [];
  for (let k = 0; k < n; k++) {
    out.push((i) => [i, k]);
    out.push((i) => [k, i]);
  }
  return out;
}

// The eight mask patterns: a module (x, y) is flipped where the test holds.
const masks = [
  (x, y) => (x + y) % 2 === 0,
  (x, y) => y % 2 === 0,
  (x) => x % 3 === 0,
  (x, y) => (x + y) % 3 === 0,
  (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
  (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
  (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
  (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
];

// alignmentCentres are the rows (and columns) of a version's alignment
// patterns: 6, then evenly spaced up to size - 7 (the standard's table E.1).
function alignmentCentres(v) {
  if (v === 1) return [];
  const count = Math.floor(v / 7) + 2;
  const step = v === 32 ? 26 : Math.ceil((v * 4 + 4) / (count * 2 - 2)) * 2;
  const out = [6];
  for (let pos = v * 4 + 10; out.length < count; pos -= step) out.splice(1, 0, pos);
  return out;
}

// qrSVG draws text's symbol as an SVG image named label: dark modules on
// a light square with the standard's quiet zone of 4 modules, the same in
// either theme (a scanner wants dark on light).
export function qrSVG(text, label) {
  const { version, mask, size, dark } = encode(text);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const side = size + 8;
  let d = "";
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (!dark[y * size + x]) continue;
      let run = 1;
      while (x + run < size && dark[y * size + x + run]) run++;
      d += `M${x + 4} ${y + 4}h${run}v1h-${run}z`;
      x += run - 1;
    }
  }
  for (const [k, v] of Object.entries({ viewBox: `0 0 ${side} ${side}`, role: "img", "aria-label": label, class: "qr",
    "shape-rendering": "crispEdges", "data-version": version, "data-mask": mask })) svg.setAttribute(k, v);
  const background = document.createElementNS(ns, "rect");
  for (const [k, v] of Object.entries({ width: side, height: side, fill: "#fff" })) background.setAttribute(k, v);
  const modules = document.createElementNS(ns, "path");
  modules.setAttribute("d", d);
  modules.setAttribute("fill", "#000");
  svg.append(background, modules);
  return svg;
}
