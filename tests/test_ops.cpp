// The op registry: shape rules against naive references, cost models against hand-computed
// counts, and every error message. Also the small IR helpers the registry relies on.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <set>

#include "compiler/ir/ir.h"
#include "compiler/ir/op_registry.h"

using namespace nas;
using Catch::Matchers::Contains;

namespace {

struct Inferred {
  bool ok = false;
  Shape shape;
  std::string error;  // from complete_attrs or infer_shape
};

// Runs an op the way elaboration does: complete the attributes, then infer. Input i is
// described as "[..] from `x<i>`".
Inferred infer(const std::string& op_name, const std::vector<Shape>& in, Attrs attrs = {}) {
  const OpDef* op = find_op(op_name);
  REQUIRE(op != nullptr);
  Inferred r;
  r.error = complete_attrs(*op, attrs);
  if (!r.error.empty()) return r;
  auto describe = [&](size_t i) { return shape_str(in[i]) + " from `x" + std::to_string(i) + "`"; };
  r.ok = infer_shape(*op, in, attrs, describe, r.shape, r.error);
  if (r.ok) CHECK(r.error.empty());
  return r;
}

Shape shape_of(const std::string& op, const std::vector<Shape>& in, Attrs attrs = {}) {
  Inferred r = infer(op, in, std::move(attrs));
  INFO(r.error);
  REQUIRE(r.ok);
  return r.shape;
}

std::string error_of(const std::string& op, const std::vector<Shape>& in, Attrs attrs = {}) {
  Inferred r = infer(op, in, std::move(attrs));
  REQUIRE_FALSE(r.ok);
  REQUIRE_FALSE(r.error.empty());
  return r.error;
}

// Costs go through a real graph: input nodes feeding one node of `op_name`.
OpCost cost_of(const std::string& op_name, const std::vector<Shape>& in, Attrs attrs = {}) {
  Graph g;
  for (const Shape& s : in) {
    Node n;
    n.id = static_cast<int>(g.nodes.size());
    n.op = find_op("input");
    n.attrs = {{"shape", IntList(s)}};
    n.shape = s;
    g.nodes.push_back(n);
    g.inputs.push_back(n.id);
  }
  Node n;
  n.id = static_cast<int>(g.nodes.size());
  n.op = find_op(op_name);
  REQUIRE(n.op != nullptr);
  n.inputs = g.inputs;
  REQUIRE(complete_attrs(*n.op, attrs).empty());
  n.attrs = attrs;
  n.shape = shape_of(op_name, in, attrs);
  g.nodes.push_back(n);
  g.output = n.id;
  return node_cost(g, g.nodes.back());
}

AttrValue I(int64_t v) {
  return v;
}
AttrValue F(double v) {
  return v;
}
AttrValue B(bool v) {
  return v;
}
AttrValue S(const char* v) {
  return std::string(v);
}

// Reference for a sliding window along one axis, written differently from the rule: count
// the window positions whose every tap lands inside the padded axis [-pad, n + pad).
int64_t count_windows(int64_t n, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  int64_t count = 0;
  for (int64_t start = -pad; start < n + pad; start += stride) {
    bool inside = true;
    for (int64_t t = 0; t < kernel; ++t)
      if (start + t * dilation >= n + pad) inside = false;
    if (inside) ++count;
  }
  return count;
}

constexpr int64_t kHuge = int64_t{1} << 40;
constexpr int64_t kMax64 = std::numeric_limits<int64_t>::max();

}  // namespace

// --- IR helpers ---------------------------------------------------------------------------

TEST_CASE("shapes print and count", "[ir]") {
  CHECK(shape_str({16, 32, 32}) == "[16,32,32]");
  CHECK(shape_str({10}) == "[10]");
  CHECK(shape_str({}) == "[]");
  CHECK(shape_numel({16, 32, 32}) == 16384);
  CHECK(shape_numel({}) == 1);
  CHECK(shape_numel({kHuge, kHuge}) == kMax64);  // saturates rather than wrapping
}

TEST_CASE("attribute values print unambiguously", "[ir]") {
  CHECK(attr_str(I(3)) == "3");
  CHECK(attr_str(I(-7)) == "-7");
  CHECK(attr_str(F(0.1)) == "0.1");
  CHECK(attr_str(F(1e-5)) == "1e-05");
  CHECK(attr_str(F(1.0)) == "1.0");
  CHECK(attr_str(F(-2.0)) == "-2.0");
  CHECK(attr_str(F(2.5)) == "2.5");
  CHECK(std::stod(attr_str(F(1.0 / 3))) == 1.0 / 3);  // round-trips
  CHECK(attr_str(B(true)) == "true");
  CHECK(attr_str(B(false)) == "false");
  CHECK(attr_str(S("sep_conv_3x3")) == "\"sep_conv_3x3\"");
  CHECK(attr_str(S("a\"b\\c\nd")) == "\"a\\\"b\\\\c\\nd\"");
  CHECK(attr_str(IntList{1, 2}) == "[1,2]");
  CHECK(attr_str(IntList{}) == "[]");
  CHECK(attr_str(StringList{"a", "b"}) == "[\"a\",\"b\"]");
}

TEST_CASE("node attribute accessors check presence and type", "[ir]") {
  Node n;
  n.name = "c";
  n.attrs = {{"k", I(3)},
             {"eps", F(0.5)},
             {"bias", B(true)},
             {"key", S("e0")},
             {"names", StringList{"a"}}};
  CHECK(n.int_attr("k") == 3);
  CHECK(n.float_attr("eps") == 0.5);
  CHECK(n.bool_attr("bias"));
  CHECK(n.string_attr("key") == "e0");
  CHECK(n.strings_attr("names") == StringList{"a"});
  CHECK(n.has_attr("k"));
  CHECK_FALSE(n.has_attr("out"));
  CHECK_THROWS_AS(n.int_attr("out"), InternalError);
  CHECK_THROWS_AS(n.int_attr("eps"), InternalError);
  CHECK_THROWS_AS(n.float_attr("k"), InternalError);
  CHECK_THROWS_AS(n.string_attr("names"), InternalError);
}

TEST_CASE("graph consumers, arch groups and special ops", "[ir]") {
  Graph g;
  auto add_node = [&](const char* op, std::vector<int> inputs) {
    Node n;
    n.id = static_cast<int>(g.nodes.size());
    n.op = find_op(op);
    n.inputs = std::move(inputs);
    g.nodes.push_back(n);
  };
  add_node("input", {});
  add_node("relu", {0});
  add_node("zero", {0});
  add_node("choice", {1, 2});
  add_node("add", {3, 3});  // the same input twice counts once
  auto consumers = g.consumers();
  REQUIRE(consumers.size() == 5);
  CHECK(consumers[0] == std::vector<int>{1, 2});
  CHECK(consumers[1] == std::vector<int>{3});
  CHECK(consumers[3] == std::vector<int>{4});
  CHECK(consumers[4].empty());

  CHECK(is_input(g.nodes[0]));
  CHECK(is_zero(g.nodes[2]));
  CHECK(is_choice(g.nodes[3]));
  CHECK_FALSE(is_choice(g.nodes[1]));
  CHECK_FALSE(is_zero(Node{}));  // no op yet

  g.arch.push_back({"normal_e0", {"conv", "pool"}, 1, {3}, {}});
  REQUIRE(g.find_group("normal_e0") != nullptr);
  CHECK(g.find_group("normal_e0")->candidates.size() == 2);
  CHECK(g.find_group("reduce_e0") == nullptr);
  g.find_group("normal_e0")->k = 2;
  CHECK(static_cast<const Graph&>(g).find_group("normal_e0")->k == 2);
}

// --- Registry -----------------------------------------------------------------------------

TEST_CASE("every builtin op is registered once, with consistent attribute specs", "[ops]") {
  const std::vector<std::string> expected = {
      "input", "choice", "conv", "dwconv", "linear", "batchnorm", "relu", "relu6", "sigmoid",
      "hard_swish", "hard_sigmoid", "leaky_relu", "max_pool", "avg_pool", "global_avg_pool",
      "dropout", "add", "concat", "mul", "flatten", "identity", "zero", "crop", "silu", "drop_path",
      "aux_loss", "channel_slice", "channel_shuffle",
      // Internal: the training loss and the gradient ops autodiff emits.
      "cross_entropy", "cross_entropy_grad", "aux_loss_grad", "conv_grad_input", "conv_grad_weight",
      "linear_grad_input", "linear_grad_weight", "batchnorm_grad", "activation_grad", "pool_grad",
      "global_avg_pool_grad", "unflatten", "crop_grad", "channel_slice_grad", "dropout_grad",
      "drop_path_grad", "concat_grad", "choice_grad_input", "choice_grad_arch",
      // Internal: what the remat pass inserts.
      "recompute"};
  std::set<std::string> names;
  for (const OpDef* op : all_ops()) {
    CHECK(names.insert(op->name).second);
    CHECK(find_op(op->name) == op);
    CHECK(op->infer != nullptr);
    CHECK_FALSE(op->doc.empty());
    for (const AttrSpec& a : op->attrs) {
      INFO(op->name << "." << a.name);
      CHECK(op->find_attr(a.name) == &a);
      if (a.default_value) CHECK(a.default_value->index() == static_cast<size_t>(a.type));
    }
  }
  CHECK(names == std::set<std::string>(expected.begin(), expected.end()));
  CHECK(find_op("conv2d") == nullptr);
  CHECK(find_op("input")->internal);
  CHECK(find_op("choice")->internal);
  // Every op a user can write has a gradient rule, except zero (which passes none);
  // gradient ops are internal and name their forward node.
  for (const OpDef* op : all_ops()) {
    INFO(op->name);
    if (!op->internal && op->name != "zero") CHECK(op->grad != nullptr);
    if (op->find_attr("fwd")) CHECK(op->internal);
    if (op->effect) CHECK(op->find_attr("fwd") != nullptr);
  }
  CHECK_FALSE(find_op("conv")->internal);
  CHECK(find_op("conv")->find_attr("kernal") == nullptr);
  CHECK(std::string(attr_type_name(AttrType::Int)) == "int");
  CHECK(std::string(attr_type_name(AttrType::StringList)) == "string list");
}

TEST_CASE("complete_attrs fills defaults, converts ints to floats, and rejects bad attributes",
          "[ops]") {
  const OpDef& conv = *find_op("conv");
  Attrs a = {{"out", I(16)}, {"kernel", I(3)}};
  REQUIRE(complete_attrs(conv, a).empty());
  CHECK(a.size() == 7);
  CHECK(std::get<int64_t>(a["stride"]) == 1);
  CHECK(std::get<int64_t>(a["pad"]) == 0);
  CHECK(std::get<int64_t>(a["dilation"]) == 1);
  CHECK(std::get<int64_t>(a["groups"]) == 1);
  CHECK(std::get<bool>(a["bias"]) == false);

  Attrs bn = {{"eps", I(1)}};
  REQUIRE(complete_attrs(*find_op("batchnorm"), bn).empty());
  CHECK(std::get<double>(bn["eps"]) == 1.0);
  CHECK(std::get<double>(bn["momentum"]) == 0.1);
  CHECK(std::get<bool>(bn["affine"]));

  Attrs empty_list = {{"shape", StringList{}}};  // `[]` has no element type in the source
  CHECK(complete_attrs(*find_op("input"), empty_list).empty());
  CHECK(std::holds_alternative<IntList>(empty_list["shape"]));

  Attrs typo = {{"out", I(16)}, {"kernal", I(3)}};
  CHECK(complete_attrs(conv, typo) ==
        "conv has no attribute `kernal`; its attributes are out, kernel, stride, pad, dilation, "
        "groups, bias (did you mean `kernel`?)");
  Attrs far = {{"out", I(16)}, {"kernel", I(3)}, {"momentum", F(0.1)}};
  CHECK(complete_attrs(conv, far) ==
        "conv has no attribute `momentum`; its attributes are out, kernel, stride, pad, "
        "dilation, groups, bias");
  Attrs relu_attr = {{"slope", F(0.1)}};
  CHECK(complete_attrs(*find_op("relu"), relu_attr) ==
        "relu has no attribute `slope`; it takes none");

  Attrs missing = {{"kernel", I(3)}};
  CHECK(complete_attrs(conv, missing) == "conv requires attribute `out`");

  Attrs wrong = {{"out", I(16)}, {"kernel", I(3)}, {"stride", S("2")}};
  CHECK(complete_attrs(conv, wrong) == "conv attribute `stride` must be int, got string");
  Attrs float_for_int = {{"out", F(16)}, {"kernel", I(3)}};
  CHECK(complete_attrs(conv, float_for_int) == "conv attribute `out` must be int, got float");
  Attrs int_for_bool = {{"out", I(16)}, {"kernel", I(3)}, {"bias", I(1)}};
  CHECK(complete_attrs(conv, int_for_bool) == "conv attribute `bias` must be bool, got int");
  Attrs list_for_list = {{"shape", StringList{"a"}}};
  CHECK(complete_attrs(*find_op("input"), list_for_list) ==
        "input attribute `shape` must be int list, got string list");
}

TEST_CASE("infer_shape checks arity first", "[ops]") {
  CHECK(error_of("add", {}) == "add expects at least 1 input, got 0");
  CHECK(error_of("conv", {{3, 8, 8}, {3, 8, 8}}, {{"out", I(4)}, {"kernel", I(3)}}) ==
        "conv expects 1 input, got 2");
  CHECK(error_of("relu", {}) == "relu expects 1 input, got 0");
  CHECK(error_of("input", {{3}}, {{"shape", IntList{3}}}) == "input expects 0 inputs, got 1");
  CHECK(error_of("choice", {}, {{"key", S("e")}, {"candidates", StringList{}}}) ==
        "choice expects at least 1 input, got 0");
}

TEST_CASE("infer_shape rejects inputs that did not come out of shape inference", "[ops]") {
  const OpDef& relu = *find_op("relu");
  Shape out;
  std::string error;
  CHECK_THROWS_AS(infer_shape(relu, {{}}, {}, nullptr, out, error), InternalError);
  CHECK_THROWS_AS(infer_shape(relu, {{3, 0}}, {}, nullptr, out, error), InternalError);
  // Without a describe function, inputs are described by their shape.
  CHECK_FALSE(infer_shape(*find_op("linear"), {{3, 2}}, {{"out", I(2)}, {"bias", B(true)}}, nullptr,
                          out, error));
  CHECK_THAT(error, Contains("got [3,2];"));
}

// --- Graph structure ----------------------------------------------------------------------

TEST_CASE("input", "[ops]") {
  CHECK(shape_of("input", {}, {{"shape", IntList{1, 28, 28}}}) == Shape{1, 28, 28});
  CHECK(shape_of("input", {}, {{"shape", IntList{784}}}) == Shape{784});
  CHECK(error_of("input", {}, {{"shape", IntList{3, 0, 4}}}) ==
        "input dimensions must be >= 1, got [3,0,4]");
  CHECK(error_of("input", {}, {{"shape", IntList{-3}}}) ==
        "input dimensions must be >= 1, got [-3]");
  CHECK(error_of("input", {}, {{"shape", IntList{}}}) ==
        "input shape must have at least one dimension, got []");
  CHECK(error_of("input", {}) == "input requires attribute `shape`");
  // Huge dimensions are refused, whether or not their product overflows int64.
  CHECK(error_of("input", {}, {{"shape", IntList{kHuge, 2}}}) ==
        "tensors are limited to 2^40 elements per sample, but input would produce "
        "[1099511627776,2]");
  CHECK_THAT(error_of("input", {}, {{"shape", IntList{kMax64, kMax64, kMax64}}}),
             Contains("limited to 2^40 elements"));
  CHECK(shape_of("input", {}, {{"shape", IntList{kHuge}}}) == Shape{kHuge});  // at the limit
  CHECK(cost_of("input", {}, {{"shape", IntList{3}}}).params == 0);
}

TEST_CASE("choice", "[ops]") {
  Attrs two = {{"key", S("edge0")}, {"candidates", StringList{"conv", "pool"}}};
  CHECK(shape_of("choice", {{16, 32, 32}, {16, 32, 32}}, two) == Shape{16, 32, 32});
  Attrs join = {{"key", S("n2")}, {"candidates", StringList{"a", "b", "c"}}, {"k", I(2)}};
  CHECK(shape_of("choice", {{8}, {8}, {8}}, join) == Shape{8});
  CHECK(shape_of("choice", {{8}}, {{"key", S("k")}, {"candidates", StringList{"only"}}}) ==
        Shape{8});

  CHECK(error_of("choice", {{16, 32, 32}, {16, 16, 16}}, two) ==
        "choice `edge0` candidates must produce the same shape: `conv` gives [16,32,32] from "
        "`x0` but `pool` gives [16,16,16] from `x1`");
  CHECK(error_of("choice", {{8}, {8}, {8}}, two) ==
        "choice `edge0` needs one candidate name per input: 2 names for 3 inputs");
  CHECK(error_of("choice", {{8}, {8}},
                 {{"key", S("e")}, {"candidates", StringList{"conv", "conv"}}}) ==
        "choice `e` candidate names must be distinct: `conv` appears twice");
  Attrs k3 = two;
  k3["k"] = I(3);
  CHECK(error_of("choice", {{8}, {8}}, k3) ==
        "choice `edge0` attribute `k` must be between 1 and the number of candidates (2), got 3");
  k3["k"] = I(0);
  CHECK_THAT(error_of("choice", {{8}, {8}}, k3), Contains("got 0"));
  CHECK(error_of("choice", {{8}}, {{"candidates", StringList{"a"}}}) ==
        "choice requires attribute `key`");
}

TEST_CASE("zero", "[ops]") {
  // Reference: the length of x[::s] is the number of indices divisible by s.
  auto strided = [](int64_t n, int64_t s) {
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) kept += (i % s == 0);
    return kept;
  };
  for (int64_t n : {1, 2, 5, 7, 8, 32})
    for (int64_t s : {1, 2, 3, 4})
      CHECK(shape_of("zero", {{16, n, n + 1}}, {{"stride", I(s)}}) ==
            Shape{16, strided(n, s), strided(n + 1, s)});
  CHECK(shape_of("zero", {{64}}) == Shape{64});
  CHECK(shape_of("zero", {{4, 4}}, {{"stride", I(1)}}) == Shape{4, 4});
  CHECK(error_of("zero", {{64}}, {{"stride", I(2)}}) ==
        "zero with stride 2 expects a 3-D input [C,H,W], got [64] from `x0`");
  CHECK(error_of("zero", {{4, 8, 8}}, {{"stride", I(0)}}) ==
        "zero attribute `stride` must be >= 1, got 0");
  CHECK(error_of("zero", {{4, 8, 8}}, {{"stride", I(kMax64)}}) ==
        "zero attribute `stride` must be at most 1099511627776, got 9223372036854775807");
  OpCost c = cost_of("zero", {{4, 8, 8}});
  CHECK(c.params == 0);
  CHECK(c.macs == 0);
}

TEST_CASE("identity and the shape-preserving activations", "[ops]") {
  for (const char* op :
       {"identity", "relu", "relu6", "sigmoid", "hard_swish", "hard_sigmoid", "leaky_relu"}) {
    INFO(op);
    for (const Shape& s : {Shape{16, 32, 32}, Shape{10}, Shape{2, 3}}) {
      CHECK(shape_of(op, {s}) == s);
      OpCost c = cost_of(op, {s});
      CHECK(c.params == 0);
      CHECK(c.macs == 0);
    }
  }
  CHECK(shape_of("leaky_relu", {{4}}, {{"slope", F(0.2)}}) == Shape{4});
  CHECK(shape_of("leaky_relu", {{4}}, {{"slope", I(-1)}}) == Shape{4});
  CHECK(error_of("leaky_relu", {{4}}, {{"slope", F(INFINITY)}}) ==
        "leaky_relu attribute `slope` must be finite, got inf");
}

// --- Convolution and linear layers ---------------------------------------------------------

TEST_CASE("conv shapes match a count of window positions", "[ops]") {
  for (int64_t k = 1; k <= 5; ++k)
    for (int64_t s = 1; s <= 3; ++s)
      for (int64_t p = 0; p <= 2; ++p)
        for (int64_t d = 1; d <= 3; ++d)
          for (int64_t h : {1, 3, 4, 7, 8}) {
            int64_t w = h + 3;
            Attrs a = {{"out", I(5)},
                       {"kernel", I(k)},
                       {"stride", I(s)},
                       {"pad", I(p)},
                       {"dilation", I(d)}};
            int64_t ho = count_windows(h, k, s, p, d), wo = count_windows(w, k, s, p, d);
            INFO("k=" << k << " s=" << s << " p=" << p << " d=" << d << " h=" << h);
            Inferred r = infer("conv", {{2, h, w}}, a);
            if (ho > 0 && wo > 0) {
              CHECK(r.ok);
              CHECK(r.shape == Shape{5, ho, wo});
            } else {
              CHECK_FALSE(r.ok);
              CHECK_THAT(r.error, Contains("must fit in the padded input"));
            }
          }
}

TEST_CASE("conv parameters and MACs", "[ops]") {
  // 3 -> 16 channels, 3x3: 16 * 3 * 9 weights.
  Attrs a = {{"out", I(16)}, {"kernel", I(3)}, {"pad", I(1)}};
  CHECK(shape_of("conv", {{3, 32, 32}}, a) == Shape{16, 32, 32});
  OpCost c = cost_of("conv", {{3, 32, 32}}, a);
  CHECK(c.params == 432);
  CHECK(c.macs == 432 * 32 * 32);
  a["bias"] = B(true);
  CHECK(cost_of("conv", {{3, 32, 32}}, a).params == 448);
  CHECK(cost_of("conv", {{3, 32, 32}}, a).macs == 432 * 32 * 32);  // bias adds no MACs

  // MobileNetV2's stem: 3 -> 32, 3x3 stride 2 on 224x224: 864 weights, ~10.8M MACs.
  Attrs stem = {{"out", I(32)}, {"kernel", I(3)}, {"stride", I(2)}, {"pad", I(1)}};
  CHECK(shape_of("conv", {{3, 224, 224}}, stem) == Shape{32, 112, 112});
  c = cost_of("conv", {{3, 224, 224}}, stem);
  CHECK(c.params == 864);
  CHECK(c.macs == 10838016);

  // Grouped: 18 -> 6 channels in 3 groups, each output sees 6 input channels.
  Attrs grouped = {{"out", I(6)}, {"kernel", I(3)}, {"groups", I(3)}};
  CHECK(shape_of("conv", {{18, 8, 8}}, grouped) == Shape{6, 6, 6});
  c = cost_of("conv", {{18, 8, 8}}, grouped);
  CHECK(c.params == 6 * 6 * 9);
  CHECK(c.macs == 6 * 6 * 9 * 36);

  // Pointwise with dilation has no effect on the count.
  c = cost_of("conv", {{8, 5, 5}}, {{"out", I(4)}, {"kernel", I(1)}, {"dilation", I(3)}});
  CHECK(c.params == 32);
  CHECK(c.macs == 32 * 25);
}

TEST_CASE("conv errors", "[ops]") {
  Attrs ok = {{"out", I(16)}, {"kernel", I(3)}};
  CHECK(error_of("conv", {{64}}, ok) == "conv expects a 3-D input [C,H,W], got [64] from `x0`");
  CHECK(error_of("conv", {{3, 8}}, ok) == "conv expects a 3-D input [C,H,W], got [3,8] from `x0`");
  struct Bad {
    const char* key;
    int64_t value;
    const char* message;
  };
  for (const Bad& b : {Bad{"out", 0, "conv attribute `out` must be >= 1, got 0"},
                       Bad{"kernel", 0, "conv attribute `kernel` must be >= 1, got 0"},
                       Bad{"stride", 0, "conv attribute `stride` must be >= 1, got 0"},
                       Bad{"pad", -1, "conv attribute `pad` must be >= 0, got -1"},
                       Bad{"dilation", 0, "conv attribute `dilation` must be >= 1, got 0"},
                       Bad{"groups", 0, "conv attribute `groups` must be >= 1, got 0"},
                       Bad{"pad", kMax64,
                           "conv attribute `pad` must be at most 1099511627776, got "
                           "9223372036854775807"},
                       Bad{"out", kHuge + 1,
                           "conv attribute `out` must be at most 1099511627776, got "
                           "1099511627777"}}) {
    Attrs a = ok;
    a[b.key] = I(b.value);
    CHECK(error_of("conv", {{3, 8, 8}}, a) == b.message);
  }
  Attrs grouped = {{"out", I(8)}, {"kernel", I(3)}, {"groups", I(4)}};
  CHECK(error_of("conv", {{18, 8, 8}}, grouped) ==
        "conv groups=4 must divide the 18 input channels of [18,8,8] from `x0`");
  grouped["out"] = I(6);
  CHECK(error_of("conv", {{16, 8, 8}}, grouped) ==
        "conv groups=4 must divide the output channels, got out=6");
  CHECK(error_of("conv", {{16, 4, 4}}, {{"out", I(8)}, {"kernel", I(5)}}) ==
        "conv kernel 5 must fit in the padded input (H+2*pad = 4, W+2*pad = 4), got [16,4,4] "
        "from `x0`");
  CHECK(error_of("conv", {{16, 8, 4}},
                 {{"out", I(8)}, {"kernel", I(3)}, {"dilation", I(2)}, {"pad", I(0)}}) ==
        "conv kernel 3 with dilation 2 must fit in the padded input (H+2*pad = 8, W+2*pad = 4), "
        "got [16,8,4] from `x0`");
  // Kernel and dilation near the cap: their product would overflow; the window must not fit.
  CHECK_THAT(
      error_of("conv", {{1, 8, 8}}, {{"out", I(1)}, {"kernel", I(kHuge)}, {"dilation", I(kHuge)}}),
      Contains("must fit in the padded input"));
  // Each attribute is fine, but the output is too big.
  CHECK(error_of("conv", {{1, 2, 2}}, {{"out", I(kHuge)}, {"kernel", I(1)}}) ==
        "tensors are limited to 2^40 elements per sample, but conv would produce "
        "[1099511627776,2,2]");
}

TEST_CASE("dwconv", "[ops]") {
  for (int64_t k : {3, 5, 7})
    for (int64_t s : {1, 2})
      for (int64_t d : {1, 2}) {
        int64_t p = d * (k - 1) / 2;  // "same" padding
        Attrs a = {{"kernel", I(k)}, {"stride", I(s)}, {"pad", I(p)}, {"dilation", I(d)}};
        int64_t n = count_windows(14, k, s, p, d);
        CHECK(shape_of("dwconv", {{24, 14, 14}}, a) == Shape{24, n, n});
        CHECK(n == (s == 1 ? 14 : 7));
      }

  // MobileNetV2 depthwise 3x3 on [32,112,112]: 32 * 9 weights, applied at 112*112 positions.
  Attrs dw = {{"kernel", I(3)}, {"pad", I(1)}};
  OpCost c = cost_of("dwconv", {{32, 112, 112}}, dw);
  CHECK(c.params == 288);
  CHECK(c.macs == 3612672);
  dw["stride"] = I(2);
  CHECK(shape_of("dwconv", {{32, 112, 112}}, dw) == Shape{32, 56, 56});
  CHECK(cost_of("dwconv", {{32, 112, 112}}, dw).macs == 288 * 56 * 56);
  dw["bias"] = B(true);
  CHECK(cost_of("dwconv", {{32, 112, 112}}, dw).params == 288 + 32);

  Attrs mult = {{"kernel", I(3)}, {"multiplier", I(2)}};
  CHECK(shape_of("dwconv", {{8, 10, 10}}, mult) == Shape{16, 8, 8});
  c = cost_of("dwconv", {{8, 10, 10}}, mult);
  CHECK(c.params == 16 * 9);
  CHECK(c.macs == 16 * 9 * 64);

  CHECK(error_of("dwconv", {{8}}, {{"kernel", I(3)}}) ==
        "dwconv expects a 3-D input [C,H,W], got [8] from `x0`");
  CHECK(error_of("dwconv", {{8, 4, 4}}, {{"kernel", I(3)}, {"multiplier", I(0)}}) ==
        "dwconv attribute `multiplier` must be >= 1, got 0");
  CHECK(error_of("dwconv", {{8, 4, 4}}, {{"kernel", I(3)}, {"stride", I(-2)}}) ==
        "dwconv attribute `stride` must be >= 1, got -2");
  CHECK(error_of("dwconv", {{8, 2, 2}}, {{"kernel", I(3)}}) ==
        "dwconv kernel 3 must fit in the padded input (H+2*pad = 2, W+2*pad = 2), got [8,2,2] "
        "from `x0`");
  CHECK_THAT(error_of("dwconv", {{1 << 20, 1, 1}}, {{"kernel", I(1)}, {"multiplier", I(kHuge)}}),
             Contains("limited to 2^40 elements"));
  CHECK(error_of("dwconv", {{8, 4, 4}}) == "dwconv requires attribute `kernel`");
}

TEST_CASE("linear", "[ops]") {
  CHECK(shape_of("linear", {{1280}}, {{"out", I(1000)}}) == Shape{1000});
  OpCost c = cost_of("linear", {{1280}}, {{"out", I(1000)}});
  CHECK(c.params == 1281000);
  CHECK(c.macs == 1280000);
  c = cost_of("linear", {{1280}}, {{"out", I(1000)}, {"bias", B(false)}});
  CHECK(c.params == 1280000);
  CHECK(c.macs == 1280000);

  CHECK(error_of("linear", {{16, 4, 4}}, {{"out", I(10)}}) ==
        "linear expects a 1-D input [F], got [16,4,4] from `x0`; use `flatten` or "
        "`global_avg_pool` first");
  CHECK(error_of("linear", {{16}}, {{"out", I(0)}}) ==
        "linear attribute `out` must be >= 1, got 0");
  CHECK(error_of("linear", {{16}}) == "linear requires attribute `out`");
}

// --- Normalisation ---------------------------------------------------------------------------

TEST_CASE("batchnorm", "[ops]") {
  CHECK(shape_of("batchnorm", {{16, 32, 32}}) == Shape{16, 32, 32});
  CHECK(shape_of("batchnorm", {{64}}) == Shape{64});
  CHECK(shape_of("batchnorm", {{4}}, {{"momentum", I(0)}, {"eps", F(1e-3)}}) == Shape{4});
  OpCost c = cost_of("batchnorm", {{16, 32, 32}});
  CHECK(c.params == 32);  // scale and shift; running statistics are not trained
  CHECK(c.macs == 0);
  CHECK(cost_of("batchnorm", {{16, 32, 32}}, {{"affine", B(false)}}).params == 0);

  CHECK(error_of("batchnorm", {{4}}, {{"eps", F(0)}}) ==
        "batchnorm attribute `eps` must be > 0, got 0.0");
  CHECK(error_of("batchnorm", {{4}}, {{"eps", F(-1e-5)}}) ==
        "batchnorm attribute `eps` must be > 0, got -1e-05");
  CHECK_THAT(error_of("batchnorm", {{4}}, {{"eps", F(NAN)}}), Contains("`eps` must be > 0"));
  CHECK(error_of("batchnorm", {{4}}, {{"momentum", F(1.5)}}) ==
        "batchnorm attribute `momentum` must be in [0, 1], got 1.5");
  CHECK_THAT(error_of("batchnorm", {{4}}, {{"momentum", F(-0.1)}}), Contains("in [0, 1]"));

  // A rank-0 input cannot reach infer_shape (no op makes one), so call the rule directly.
  Attrs a;
  REQUIRE(complete_attrs(*find_op("batchnorm"), a).empty());
  std::vector<Shape> in = {{}};
  InferContext ctx{in, a, [](size_t) { return std::string("[] from `x0`"); }, {}};
  Shape out;
  CHECK_FALSE(find_op("batchnorm")->infer(ctx, out));
  CHECK(ctx.error ==
        "batchnorm expects an input with at least 1 dimension (channels first), got [] from `x0`");
}

// --- Pooling ---------------------------------------------------------------------------------

TEST_CASE("max_pool and avg_pool shapes match a count of window positions", "[ops]") {
  for (const char* op : {"max_pool", "avg_pool"})
    for (int64_t k = 1; k <= 4; ++k)
      for (int64_t s = 0; s <= 3; ++s)
        for (int64_t p = 0; p <= 2; ++p)
          for (int64_t h : {1, 2, 5, 8}) {
            INFO(op << " k=" << k << " s=" << s << " p=" << p << " h=" << h);
            Inferred r =
                infer(op, {{3, h, h + 1}}, {{"kernel", I(k)}, {"stride", I(s)}, {"pad", I(p)}});
            if (2 * p > k) {
              CHECK_FALSE(r.ok);
              CHECK(r.error == std::string(op) + " attribute `pad` must be at most kernel/2 = " +
                                   std::to_string(k / 2) + " (as in PyTorch), got " +
                                   std::to_string(p));
              continue;
            }
            int64_t step = s == 0 ? k : s;  // stride 0 means the kernel, as in PyTorch
            int64_t ho = count_windows(h, k, step, p, 1), wo = count_windows(h + 1, k, step, p, 1);
            if (ho > 0 && wo > 0) {
              CHECK(r.ok);
              CHECK(r.shape == Shape{3, ho, wo});
            } else {
              CHECK_FALSE(r.ok);
              CHECK_THAT(r.error, Contains("must fit in the padded input"));
            }
          }
  // The DARTS candidates: 3x3, stride 1 or 2, pad 1.
  CHECK(shape_of("max_pool", {{16, 32, 32}}, {{"kernel", I(3)}, {"stride", I(1)}, {"pad", I(1)}}) ==
        Shape{16, 32, 32});
  CHECK(shape_of(
            "avg_pool", {{16, 32, 32}},
            {{"kernel", I(3)}, {"stride", I(2)}, {"pad", I(1)}, {"count_include_pad", B(false)}}) ==
        Shape{16, 16, 16});
  CHECK(shape_of("max_pool", {{16, 32, 32}}, {{"kernel", I(2)}}) == Shape{16, 16, 16});
  OpCost c = cost_of("avg_pool", {{16, 32, 32}}, {{"kernel", I(2)}});
  CHECK(c.params == 0);
  CHECK(c.macs == 0);
}

TEST_CASE("pooling errors", "[ops]") {
  CHECK(error_of("max_pool", {{16}}, {{"kernel", I(2)}}) ==
        "max_pool expects a 3-D input [C,H,W], got [16] from `x0`");
  CHECK(error_of("avg_pool", {{1, 4, 4}}, {{"kernel", I(0)}}) ==
        "avg_pool attribute `kernel` must be >= 1, got 0");
  CHECK(error_of("avg_pool", {{1, 4, 4}}, {{"kernel", I(2)}, {"stride", I(-1)}}) ==
        "avg_pool attribute `stride` must be >= 0, got -1");
  CHECK(error_of("max_pool", {{1, 4, 4}}, {{"kernel", I(3)}, {"pad", I(2)}}) ==
        "max_pool attribute `pad` must be at most kernel/2 = 1 (as in PyTorch), got 2");
  CHECK(error_of("max_pool", {{1, 2, 2}}, {{"kernel", I(3)}}) ==
        "max_pool kernel 3 must fit in the padded input (H+2*pad = 2, W+2*pad = 2), got [1,2,2] "
        "from `x0`");
  CHECK(error_of("avg_pool", {{1, 4, 4}}, {{"kernel", I(2)}, {"count_include_pad", I(1)}}) ==
        "avg_pool attribute `count_include_pad` must be bool, got int");
  CHECK_THAT(error_of("max_pool", {{1, 4, 4}}, {{"kernel", I(2)}, {"count_include_pad", B(true)}}),
             Contains("max_pool has no attribute `count_include_pad`"));
}

TEST_CASE("global_avg_pool", "[ops]") {
  CHECK(shape_of("global_avg_pool", {{1280, 7, 7}}) == Shape{1280});
  CHECK(shape_of("global_avg_pool", {{3, 1, 1}}) == Shape{3});
  CHECK(cost_of("global_avg_pool", {{1280, 7, 7}}).macs == 0);
  CHECK(error_of("global_avg_pool", {{1280}}) ==
        "global_avg_pool expects a 3-D input [C,H,W], got [1280] from `x0`");
}

// --- Combining -------------------------------------------------------------------------------

TEST_CASE("add", "[ops]") {
  CHECK(shape_of("add", {{16, 8, 8}}) == Shape{16, 8, 8});
  CHECK(shape_of("add", {{16, 8, 8}, {16, 8, 8}, {16, 8, 8}}) == Shape{16, 8, 8});
  CHECK(cost_of("add", {{4}, {4}}).params == 0);
  CHECK(error_of("add", {{16, 8, 8}, {16, 8, 8}, {16, 4, 4}}) ==
        "add needs all inputs to have the same shape: input 0 is [16,8,8] from `x0` but input 2 "
        "is [16,4,4] from `x2`");
  CHECK(error_of("add", {{16}, {16, 1}}) ==
        "add needs all inputs to have the same shape: input 0 is [16] from `x0` but input 1 is "
        "[16,1] from `x1`");
}

TEST_CASE("concat", "[ops]") {
  // Reference: the joined axis is the sum, every other axis is the common size.
  std::vector<Shape> in = {{16, 8, 8}, {32, 8, 8}, {4, 8, 8}};
  CHECK(shape_of("concat", in) == Shape{52, 8, 8});
  CHECK(shape_of("concat", {{2, 3, 5}, {2, 4, 5}}, {{"axis", I(1)}}) == Shape{2, 7, 5});
  CHECK(shape_of("concat", {{2, 3, 5}, {2, 3, 1}}, {{"axis", I(2)}}) == Shape{2, 3, 6});
  CHECK(shape_of("concat", {{10}, {20}}) == Shape{30});
  CHECK(shape_of("concat", {{10}}) == Shape{10});
  CHECK(cost_of("concat", in).macs == 0);

  CHECK(error_of("concat", {{16, 32, 32}, {16, 16, 16}}) ==
        "concat along axis 0 needs equal sizes on the other axes: input 0 is [16,32,32] from "
        "`x0` but input 1 is [16,16,16] from `x1`");
  CHECK(error_of("concat", {{16, 8, 8}, {16, 64}}) ==
        "concat needs inputs of the same rank: input 0 is [16,8,8] from `x0` but input 1 is "
        "[16,64] from `x1`");
  CHECK(error_of("concat", {{16, 8, 8}}, {{"axis", I(3)}}) ==
        "concat attribute `axis` must be in [0, 3) for 3-D inputs, got 3");
  CHECK(error_of("concat", {{16}}, {{"axis", I(-1)}}) ==
        "concat attribute `axis` must be in [0, 1) for 1-D inputs, got -1");
  CHECK_THAT(error_of("concat", {{kHuge / 2, 1}, {kHuge / 2, 1}, {1, 1}}),
             Contains("limited to 2^40 elements"));
}

// --- Reshaping and the rest --------------------------------------------------------------------

TEST_CASE("flatten", "[ops]") {
  CHECK(shape_of("flatten", {{16, 4, 4}}) == Shape{256});
  CHECK(shape_of("flatten", {{7}}) == Shape{7});
  CHECK(shape_of("flatten", {{2, 3}}) == Shape{6});
  CHECK(cost_of("flatten", {{16, 4, 4}}).params == 0);
}

TEST_CASE("crop", "[ops]") {
  // FactorizedReduce's x[:,:,1:,1:].
  CHECK(shape_of("crop", {{16, 32, 32}}, {{"top", I(1)}, {"left", I(1)}}) == Shape{16, 31, 31});
  CHECK(shape_of("crop", {{16, 32, 32}}) == Shape{16, 32, 32});
  CHECK(shape_of("crop", {{3, 10, 20}},
                 {{"top", I(2)}, {"bottom", I(3)}, {"left", I(4)}, {"right", I(5)}}) ==
        Shape{3, 5, 11});
  CHECK(shape_of("crop", {{3, 2, 2}}, {{"top", I(1)}, {"right", I(1)}}) == Shape{3, 1, 1});
  CHECK(cost_of("crop", {{3, 2, 2}}).params == 0);

  CHECK(error_of("crop", {{3, 2, 2}}, {{"top", I(1)}, {"bottom", I(1)}}) ==
        "crop must leave at least 1 row and 1 column: top 1 + bottom 1 of 2 rows, left 0 + "
        "right 0 of 2 columns, from [3,2,2] from `x0`");
  CHECK(error_of("crop", {{3, 4, 4}}, {{"left", I(-1)}}) ==
        "crop attribute `left` must be >= 0, got -1");
  CHECK_THAT(error_of("crop", {{3, 4, 4}}, {{"right", I(kMax64)}}), Contains("must be at most"));
  CHECK(error_of("crop", {{48}}, {{"top", I(1)}}) ==
        "crop expects a 3-D input [C,H,W], got [48] from `x0`");
}

TEST_CASE("channel_slice and channel_shuffle", "[ops]") {
  // PC-DARTS with K = 4 on a 16-channel edge: 4 channels through the candidates, 12 around.
  CHECK(shape_of("channel_slice", {{16, 8, 8}}, {{"count", I(4)}}) == Shape{4, 8, 8});
  CHECK(shape_of("channel_slice", {{16, 8, 8}}, {{"start", I(4)}, {"count", I(12)}}) ==
        Shape{12, 8, 8});
  CHECK(shape_of("channel_slice", {{10}}, {{"start", I(9)}, {"count", I(1)}}) == Shape{1});
  CHECK(cost_of("channel_slice", {{16, 8, 8}}, {{"count", I(4)}}).params == 0);
  CHECK(error_of("channel_slice", {{16, 8, 8}}, {{"start", I(13)}, {"count", I(4)}}) ==
        "channel_slice needs start + count <= the input's channels: start 13 + count 4 > 16 "
        "channels of [16,8,8] from `x0`");
  CHECK(error_of("channel_slice", {{16, 8, 8}}, {{"count", I(0)}}) ==
        "channel_slice attribute `count` must be >= 1, got 0");
  CHECK(error_of("channel_slice", {{16, 8, 8}}, {{"start", I(-1)}, {"count", I(2)}}) ==
        "channel_slice attribute `start` must be >= 0, got -1");
  CHECK_THAT(error_of("channel_slice", {{16, 8, 8}}), Contains("count"));

  CHECK(shape_of("channel_shuffle", {{16, 8, 8}}, {{"groups", I(4)}}) == Shape{16, 8, 8});
  CHECK(shape_of("channel_shuffle", {{6}}, {{"groups", I(6)}}) == Shape{6});
  CHECK(error_of("channel_shuffle", {{16, 8, 8}}, {{"groups", I(3)}}) ==
        "channel_shuffle needs groups to divide the channels: 3 groups, 16 channels in [16,8,8] "
        "from `x0`");
  CHECK(error_of("channel_shuffle", {{16, 8, 8}}, {{"groups", I(0)}}) ==
        "channel_shuffle attribute `groups` must be >= 1, got 0");

  // The references (which the conformance test holds every backend to), by hand: 6
  // channels in 2 groups [0 1 2 | 3 4 5] interleave to 0 3 1 4 2 5; a slice of 2 samples.
  const Attrs shuffle{{"groups", I(2)}};
  const std::vector<double> shuffled =
      find_op("channel_shuffle")
          ->reference(ReferenceArgs{1, {{6}}, {{0, 1, 2, 3, 4, 5}}, {6}, shuffle, {}});
  CHECK(shuffled == std::vector<double>{0, 3, 1, 4, 2, 5});
  const Attrs slice{{"start", I(1)}, {"count", I(2)}};
  const std::vector<double> sliced =
      find_op("channel_slice")
          ->reference(ReferenceArgs{
              2, {{3, 2}}, {{0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15}}, {2, 2}, slice, {}});
  CHECK(sliced == std::vector<double>{2, 3, 4, 5, 12, 13, 14, 15});
}

TEST_CASE("dropout", "[ops]") {
  CHECK(shape_of("dropout", {{16, 4, 4}}) == Shape{16, 4, 4});
  CHECK(shape_of("dropout", {{10}}, {{"p", F(0.0)}}) == Shape{10});
  CHECK(shape_of("dropout", {{10}}, {{"p", I(0)}}) == Shape{10});
  CHECK(error_of("dropout", {{10}}, {{"p", F(1.0)}}) ==
        "dropout attribute `p` must be in [0, 1), got 1.0");
  CHECK(error_of("dropout", {{10}}, {{"p", F(-0.25)}}) ==
        "dropout attribute `p` must be in [0, 1), got -0.25");
  CHECK(cost_of("dropout", {{10}}).params == 0);
}

TEST_CASE("drop_path", "[ops]") {
  CHECK(shape_of("drop_path", {{16, 4, 4}}) == Shape{16, 4, 4});
  CHECK(shape_of("drop_path", {{10}}, {{"p", F(0.2)}}) == Shape{10});
  CHECK(shape_of("drop_path", {{10}}, {{"p", I(-1)}}) == Shape{10});  // the run's
  CHECK(error_of("drop_path", {{10}}, {{"p", F(1.0)}}) ==
        "drop_path attribute `p` must be in [0, 1), or -1 (the run's), got 1.0");
  CHECK(error_of("drop_path", {{10}}, {{"p", F(-0.5)}}) ==
        "drop_path attribute `p` must be in [0, 1), or -1 (the run's), got -0.5");
  CHECK(cost_of("drop_path", {{3, 8, 8}}).params == 0);
  CHECK(cost_of("drop_path", {{3, 8, 8}}).macs == 0);
}

TEST_CASE("aux_loss", "[ops]") {
  CHECK(shape_of("aux_loss", {{16, 4, 4}, {10}}) == Shape{16, 4, 4});
  CHECK(shape_of("aux_loss", {{16, 4, 4}, {10}}, {{"weight", F(0.0)}}) == Shape{16, 4, 4});
  CHECK(error_of("aux_loss", {{16, 4, 4}, {10}}, {{"weight", F(-0.4)}}) ==
        "aux_loss attribute `weight` must be finite and >= 0, got -0.4");
  CHECK(error_of("aux_loss", {{16, 4, 4}, {10, 1, 1}}) ==
        "aux_loss expects 1-D auxiliary logits [classes] as its second input, got [10,1,1] from "
        "`x1`");
  CHECK(cost_of("aux_loss", {{16, 4, 4}, {10}}).params == 0);
}

TEST_CASE("mul", "[ops]") {
  CHECK(shape_of("mul", {{16, 4, 4}}, {{"scale", F(0.5)}}) == Shape{16, 4, 4});
  CHECK(shape_of("mul", {{3}}, {{"scale", I(2)}}) == Shape{3});
  CHECK(shape_of("mul", {{3}}) == Shape{3});  // scale defaults to 1
  CHECK(error_of("mul", {{3}}, {{"scale", F(NAN)}}) ==
        "mul attribute `scale` must be finite, got nan");
  CHECK(error_of("mul", {{3}}, {{"scale", S("2")}}) ==
        "mul attribute `scale` must be float, got string");
  CHECK(cost_of("mul", {{3}}, {{"scale", F(2)}}).macs == 0);
}

TEST_CASE("mul by a tensor: same shape or one factor per channel, in either order", "[ops]") {
  CHECK(shape_of("mul", {{16, 4, 4}, {16, 4, 4}}) == Shape{16, 4, 4});
  CHECK(shape_of("mul", {{16, 4, 4}, {16}}, {{"scale", F(2)}}) == Shape{16, 4, 4});
  CHECK(shape_of("mul", {{16, 4, 4}, {16, 1, 1}}) == Shape{16, 4, 4});
  CHECK(shape_of("mul", {{16}, {16, 4, 4}}) == Shape{16, 4, 4});  // g * x
  CHECK(shape_of("mul", {{16, 1, 1}, {16, 4, 4}}) == Shape{16, 4, 4});
  CHECK(shape_of("mul", {{16, 1, 1}, {16}}) == Shape{16, 1, 1});
  CHECK(shape_of("mul", {{5}, {5}}) == Shape{5});
  const std::string rule =
      "mul multiplies two tensors of the same shape, or a [C,H,W] tensor by one factor per "
      "channel ([C] or [C,1,1], in either order): ";
  CHECK(error_of("mul", {{16, 4, 4}, {8}}) ==
        rule + "input 0 is [16,4,4] from `x0` but input 1 is [8] from `x1`");
  CHECK(error_of("mul", {{8, 1, 1}, {16, 4, 4}}) ==
        rule + "input 0 is [8,1,1] from `x0` but input 1 is [16,4,4] from `x1`");
  CHECK(error_of("mul", {{16, 4, 4}, {1, 4, 4}}) ==
        rule + "input 0 is [16,4,4] from `x0` but input 1 is [1,4,4] from `x1`");
  CHECK(error_of("mul", {{16, 4, 4}, {16, 1}}) ==
        rule + "input 0 is [16,4,4] from `x0` but input 1 is [16,1] from `x1`");
  CHECK(error_of("mul", {{6}, {3}}) ==
        rule + "input 0 is [6] from `x0` but input 1 is [3] from `x1`");
  CHECK(error_of("mul", {{6}, {6}, {6}}) == "mul expects between 1 and 2 inputs, got 3");
  CHECK(cost_of("mul", {{16, 4, 4}, {16}}).params == 0);
  // The conformance test runs every form against the float64 reference and checks its
  // gradients: the factor first, [C,1,1] either side, and two tensors of one shape.
  CHECK(find_op("mul")->variants.size() == 4);
}

TEST_CASE("silu is x * sigmoid(x), from its elementwise formula", "[ops]") {
  const OpDef* silu = find_op("silu");
  REQUIRE(silu != nullptr);
  REQUIRE(silu->elementwise != nullptr);
  CHECK(std::string(silu->elementwise->value_text) == "x * sigmoid(x)");
  CHECK(shape_of("silu", {{4, 2, 2}}) == Shape{4, 2, 2});
  CHECK(silu->zero_preserving);
  CHECK(silu->step == StepKind::Activation);
  for (double x : {-4.0, -0.5, 0.0, 0.7, 3.0}) {
    double s = 1 / (1 + std::exp(-x));
    CHECK(silu->elementwise->value(x, 0) == Approx(x * s));
    double h = 1e-6;
    double numeric =
        (silu->elementwise->value(x + h, 0) - silu->elementwise->value(x - h, 0)) / (2 * h);
    CHECK(silu->elementwise->derivative(x, 0) == Approx(numeric).epsilon(1e-6));
  }
  CHECK_FALSE(find_op("sigmoid")->zero_preserving);  // derived from f(0) = 0.5
  CHECK(find_op("relu")->zero_preserving);
}

TEST_CASE("the cost model counts the parameters lowering creates", "[ops]") {
  // OpCost::params is the trainable part of OpDef::params: batch norm's running statistics
  // are parameters of the plan but not weights.
  const OpDef* bn = find_op("batchnorm");
  Attrs a{{"affine", true}, {"eps", F(1e-5)}, {"momentum", F(0.1)}};
  std::vector<ParamDecl> p = bn->params({{8, 4, 4}}, {8, 4, 4}, a);
  REQUIRE(p.size() == 4);
  CHECK(p[2].role == "running_mean");
  CHECK_FALSE(p[2].trainable);
  CHECK(cost_of("batchnorm", {{8, 4, 4}}).params == 16);
  CHECK(cost_of("conv", {{4, 8, 8}},
                {{"out", I(6)}, {"kernel", I(3)}, {"groups", I(2)}, {"bias", true}})
            .params == 6 * 2 * 9 + 6);
}
