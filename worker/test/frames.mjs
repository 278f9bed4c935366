// Test clips for the worker tests and docs/edge-bench.mjs: a procedural clip (a red disc moving right over a
// textured grey background) and a minimal PNG encoder for its frames.
import zlib from "node:zlib";

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

// png encodes w×h RGB24 pixels as an 8-bit RGB PNG.
export function png(w, h, rgb) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) rgb.copy(raw, y * (w * 3 + 1) + 1, y * w * 3, (y + 1) * w * 3);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// frame draws frame t (RGB24, w×h) of the clip: a red disc of radius r (default h/5) whose centre starts at
// x0 (default 8) and moves step pixels right per frame (default 5), over a textured grey background.
export function frame(t, w, h, { x0 = 8, step = 5, r = h / 5 } = {}) {
  const rgb = Buffer.alloc(w * h * 3);
  const cx = x0 + t * step;
  const cy = h / 2;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const g = 100 + ((x * 7 + y * 13 + t * 3) % 40);
      const inside = (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
      rgb[i] = inside ? 220 : g;
      rgb[i + 1] = inside ? 30 : g;
      rgb[i + 2] = inside ? 40 : g + 10;
    }
  }
  return rgb;
}
