// Runs an ONNX model in onnxruntime (onnxruntime-node, an inference engine independent of
// nasc) on a raw float32 input and writes its float32 output: the ONNX export tests
// (tests/test_onnx_export.cpp) compare it with nasc's own inference.
// Usage: node onnx_run.js ORT_DIR MODEL.onnx INPUT.f32 OUTPUT.f32 DIM...
//   ORT_DIR: the onnxruntime-node package folder (scripts/setup.sh --tests installs it in
//   .cache/npm/node_modules/onnxruntime-node); DIM...: the input's shape, batch first.
'use strict';
const fs = require('fs');

async function main() {
  const [ortDir, model, input, output, ...dims] = process.argv.slice(2);
  if (!output || dims.length === 0) {
    console.error('usage: node onnx_run.js ORT_DIR MODEL.onnx INPUT.f32 OUTPUT.f32 DIM...');
    process.exit(2);
  }
  const ort = require(ortDir);
  const shape = dims.map(Number);
  const bytes = fs.readFileSync(input);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const session = await ort.InferenceSession.create(model);
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, shape)};
  const result = await session.run(feeds);
  const out = result[session.outputNames[0]];
  fs.writeFileSync(output, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
  console.log(`${session.outputNames[0]} [${out.dims.join(',')}]`);
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
