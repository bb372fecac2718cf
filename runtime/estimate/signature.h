// Latency-table keys. A step's signature is what decides its cost on a backend: the
// backend, the step kind and op, the batched input and output shapes, the attributes the
// kernel reads, and whether the plan trains (batch norm then uses batch statistics).
// Two steps with one signature run the same kernel on the same sizes, so one measurement
// serves every occurrence, in every sub-network of a space.
//
// A unit (a run of steps measured together, see latency_model.h) is keyed by its steps'
// signatures and how they are wired to each other; the key is a hash of that text, and
// the table stores the steps' signatures beside it for people to read.
#pragma once

#include <string>
#include <vector>

#include "runtime/exec/exec_plan.h"

namespace nas {

// False for steps that do nothing at run time (inputs, views, fused regions' members: their
// region's step computes them): they have no entry.
bool step_has_cost(const Step& s);

// "cpu conv in=[1,16,32,32] out=[1,32,32,32] bias=0 dilation=1 ...". For a choice step,
// `active` is how many candidates it mixes (the executor sums the inputs with nonzero
// weights); the signature then names that count instead of the candidate shapes.
std::string step_signature(const std::string& backend, const ExecPlan& plan, const Step& s,
                           int active = -1);

// The text a unit is keyed by: each step's signature and, per input, whether it reads an
// earlier step of the unit ("s<k>") or a value from outside ("x<k>", by first use).
std::string unit_text(const std::string& backend, const ExecPlan& plan,
                      const std::vector<int>& steps);
// "unit:" + 16 hex digits (FNV-1a 64 of unit_text).
std::string unit_signature(const std::string& backend, const ExecPlan& plan,
                           const std::vector<int>& steps);

}  // namespace nas
