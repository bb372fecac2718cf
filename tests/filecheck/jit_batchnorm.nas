// The JIT's code for training batch norm (runtime/jit/batchnorm_codegen.h): a batch norm
// and its ReLU are one region, and its gradient takes the ReLU's gradient inline. Each
// gets a body over a range of channels; a 3x3 plane is one masked vector (no scalar loop),
// each row's sums are reduced across lanes at the end, the statistics are combined in
// double. The schedule runs both steps through nasc_jit_run_step, which calls the bodies
// (runtime/jit/batchnorm_region.h).
// RUN: %nasc ir %s --stage llvm --batch 2 --train | %FileCheck %s
// RUN: %nasc ir %s --stage llvm --batch 2 | %FileCheck %s --check-prefix=INFER
network n(x: tensor[2, 3, 3]) {
  let h = batchnorm(conv(x, 4, kernel=1));
  return linear(flatten(relu(h)), 3);
}

// CHECK: ModuleID = 'nasc_kernels'
// CHECK: ModuleID = 'nasc_batchnorm'
// CHECK: define void @nasc_batchnorm_body_{{[0-9a-f]+}}(i8** %0, i64 %1, i64 %2)
// CHECK: call <{{8|16}} x float> @llvm.masked.load
// CHECK: call reassoc float @llvm.vector.reduce.fadd
// CHECK: fpext float %{{[0-9]+}} to double
// CHECK: call double @llvm.sqrt.f64
// CHECK: call void @llvm.masked.store
// CHECK: define void @nasc_batchnorm_grad_body_{{[0-9a-f]+}}(i8** %0, i64 %1, i64 %2)
// CHECK: call <{{8|16}} x float> @llvm.masked.load
// CHECK: call void @llvm.masked.store
// CHECK: ModuleID = 'nasc_schedule'
// CHECK: call i32 @nasc_jit_run_step

// Inference folds the batch norm into the convolution: no batch norm code.
// INFER-NOT: nasc_batchnorm
