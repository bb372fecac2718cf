// The whole pipeline on one .nas file: `nasc ir --stage S` stops after S and prints its
// result; --dump-after prints earlier stages on stderr as the run passes them, each under
// a `// ----- after S -----` line; skipped stages say why.
// RUN: %nasc ir %s --stage lower --no-locations --dump-after dce,zero-prune,cse,remat,fusion 2>&1 \
// RUN:   | %FileCheck %s
// RUN: %nasc ir %s --stage cse --no-locations | %FileCheck %s --check-prefix=CSE
// RUN: %nasc ir %s --stage autodiff --no-locations | %FileCheck %s --check-prefix=GRAD
// RUN: %nasc --print-pipeline | %FileCheck %s --check-prefix=LIST

network two_relus(x: tensor[2, 4, 4]) {
  let a = relu(x);
  let b = relu(x);
  let h = choice "op" {
    pool: max_pool(a, 3, stride=1, pad=1),
    id: identity(b),
  };
  return linear(global_avg_pool(h), 3);
}

// The two relu(x) survive dce and merge in cse; without --arch zero-prune is skipped.
// CHECK:      // ----- after dce -----
// CHECK:        %1 = relu(%0) : [2,4,4]  # two_relus/relu
// CHECK-NEXT:   %2 = relu(%0) : [2,4,4]  # two_relus/relu_1
// CHECK:      // ----- after zero-prune [skipped: no selection] -----
// CHECK:      // ----- after cse -----
// CHECK:        %1 = relu(%0) : [2,4,4]  # two_relus/relu
// CHECK-NEXT:   %2 = max_pool(%1) {kernel=3, pad=1, stride=1} : [2,4,4]  # two_relus/op/pool/max_pool
// CHECK-NEXT:   %3 = identity(%1) : [2,4,4]  # two_relus/op/id/identity
// CHECK:      // ----- after remat [skipped: not a training plan] -----
// CHECK:      // ----- after fusion -----
// CHECK:      fused: 0 regions, 0 nodes, 0 values not stored
// CHECK:      plan batch=1 mode=inference
// CHECK:      arch #0 "op" k=1 candidates=["pool","id"]
// CHECK:      %4 choice  choice(%2:[1,2,4,4], %3:[1,2,4,4]) -> [1,2,4,4]  arena {{[0-9]+}}+128  guard %4  group 0

// CSE:     network two_relus() {
// CSE:       %1 = relu(%0)
// CSE-NOT:   = relu(
// CSE:     arch "op"

// GRAD:      %7 = cross_entropy(%6) : [1]  # loss
// GRAD:      choice_grad_arch
// GRAD:      return %7

// LIST:      1. load
// LIST-NEXT: 2. elaborate
// LIST-NEXT: 3. shapes
// LIST-NEXT: 4. dce
// LIST-NEXT: 5. partial-channels
// LIST-NEXT: 6. zero-prune
// LIST-NEXT: 7. cse
// LIST-NEXT: 8. autodiff
// LIST-NEXT: 9. remat
// LIST-NEXT: 10. fusion
// LIST-NEXT: 11. memory-plan
// LIST-NEXT: 12. lower
