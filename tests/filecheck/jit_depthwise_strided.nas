// The JIT's code for a stride-2 depthwise convolution in a training plan
// (runtime/jit/depthwise_codegen.h): each tap's lanes read every other value of x (forward,
// weight gradient) or only some lanes read dy (data gradient), so the values a vector's
// taps read are loaded once, a vector at a time, and each tap's lanes are shuffled out of
// them: over zeros where they come from several loads, or with zeros where the lanes that
// read nothing are filled from the second operand. The weight gradient still reduces its
// sums across lanes.
// RUN: %nasc ir %s --stage llvm --batch 2 --train | %FileCheck %s
network n(x: tensor[4, 8, 8]) {
  let h = dwconv(relu(conv(x, 4, kernel=1)), 3, stride=2, pad=1);
  return linear(flatten(h), 3);
}

// CHECK: ModuleID = 'nasc_depthwise'
// CHECK-DAG: shufflevector <{{8|16}} x float> zeroinitializer, <{{8|16}} x float> %{{[0-9]+}}, <{{8|16}} x i32> <i32
// CHECK-DAG: shufflevector <{{8|16}} x float> %{{[0-9]+}}, <{{8|16}} x float> zeroinitializer, <{{8|16}} x i32> <i32
// CHECK-DAG: call <{{8|16}} x float> @llvm.fmuladd
// CHECK-DAG: call reassoc float @llvm.vector.reduce.fadd
// CHECK: ModuleID = 'nasc_schedule'
// CHECK: call i32 @nasc_jit_run_step
