// The JIT's code for the depthwise convolutions of training plans on small planes
// (runtime/jit/depthwise_codegen.h): a body per pass (forward, data gradient, weight
// gradient), the plane walked as a flat run of vectors, each tap a load at a constant
// offset under a constant mask (the padding's lanes read 0), multiplied and added in one
// instruction; the weight gradient's sums reduced across lanes into double. The schedule
// runs the three steps through nasc_jit_run_step (runtime/jit/depthwise_run.h).
// RUN: %nasc ir %s --stage llvm --batch 2 --train | %FileCheck %s
// RUN: %nasc ir %s --stage llvm --batch 2 | %FileCheck %s --check-prefix=INFER
network n(x: tensor[4, 6, 6]) {
  let h = dwconv(relu(conv(x, 4, kernel=1)), 3, pad=1);
  return linear(flatten(h), 3);
}

// CHECK: ModuleID = 'nasc_depthwise'
// CHECK: define void @nasc_depthwise_body_{{[0-9a-f]+}}(i8** %0, i64 %1, i64 %2)
// CHECK: call <{{8|16}} x float> @llvm.masked.load
// CHECK: call <{{8|16}} x float> @llvm.fmuladd
// CHECK: ModuleID = 'nasc_depthwise'
// CHECK: define void @nasc_depthwise_body_{{[0-9a-f]+}}(i8** %0, i64 %1, i64 %2)
// CHECK: call <{{8|16}} x float> @llvm.masked.load
// CHECK: call <{{8|16}} x float> @llvm.fmuladd
// CHECK: call reassoc float @llvm.vector.reduce.fadd
// CHECK: fpext float %{{[0-9]+}} to double
// CHECK: ModuleID = 'nasc_schedule'
// CHECK: call i32 @nasc_jit_run_step

// Inference plans keep the library's kernels.
// INFER-NOT: nasc_depthwise
