// The JIT's code for a plan (`nasc ir --stage llvm|asm`): the fusion pass makes
// relu(conv * 2) + s one elementwise region (a conv epilogue would take an activation
// right after the conv); the kernels module holds its entry (which
// decides the run: the sum's operands, computed or not) and its vectorised body; the
// schedule module the plan function and its chunk, which runs every step through one call
// of nasc_jit_run_step (a library kernel's with no entry, the region's with its entry), in
// step order, each under its gate.
// RUN: %nasc ir %s --stage llvm --batch 2 | %FileCheck %s
// RUN: %nasc ir %s --stage llvm --batch 2 --train | %FileCheck %s --check-prefix=TRAIN
// RUN: %nasc ir %s --stage asm --batch 2 | %FileCheck %s --check-prefix=ASM
network n(x: tensor[2, 4, 4]) {
  let s = conv(x, 2, kernel=1);
  return linear(flatten(relu(conv(x, 2, kernel=1) * 2.0) + s), 3);
}

// CHECK: ModuleID = 'nasc_kernels'
// CHECK: define internal void @nasc_region_{{[0-9]+}}_body(i8** %0, i64 %1, i64 %2)
// CHECK: load <{{8|16}} x float>
// CHECK: fmul <{{8|16}} x float>
// CHECK: store <{{8|16}} x float>
// CHECK: define i32 @nasc_region_[[R:[0-9]+]](i8** %0)
// CHECK: call void @nasc_jit_parallel_for
// CHECK: ModuleID = 'nasc_schedule'
// CHECK: define i32 @nasc_plan_chunk_0(i8** %0)
// CHECK: call i32 @nasc_jit_run_step(i8** %0, i64 1, i32 {{[0-9]+}}, i32 (i8**)* null)
// CHECK: call i32 @nasc_jit_run_step(i8** %0, i64 {{[0-9]+}}, i32 {{[0-9]+}}, i32 (i8**)* @nasc_region_[[R]])
// CHECK: define i32 @nasc_plan(i8** %0)
// CHECK: call i32 @nasc_plan_chunk_0

// In training the backward pass has its regions too (relu's gradient).
// TRAIN: define i32 @nasc_region_{{[0-9]+}}(i8** %0)
// TRAIN: define i32 @nasc_region_{{[0-9]+}}(i8** %0)
// TRAIN: define i32 @nasc_plan_chunk_0(i8** %0)
// TRAIN: define i32 @nasc_plan(i8** %0)

// ASM: nasc_region_{{[0-9]+}}_body:
// ASM: vmaxps {{.*}}%{{[xyz]}}mm
// ASM: nasc_plan:
