// The textual IR reader: print_graph(parse_ir(print_graph(g))) == print_graph(g) for the
// examples (supernets and fixed networks, with and without names and locations), the
// values attr_str writes, and a located diagnostic for each kind of malformed IR.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "compiler/ir/ir_parser.h"
#include "compiler/ir/ir_printer.h"
#include "compiler/ir/op_registry.h"
#include "compiler/passes/dce.h"
#include "compiler/passes/derive_arch.h"
#include "compiler/pipeline/pipeline.h"

namespace nas {
namespace {

const PrintOptions kBare{false, false};
const PrintOptions kAllOptions[] = {{true, true}, {true, false}, {false, true}, {false, false}};

std::string options_str(const PrintOptions& o) {
  return std::string("names=") + (o.names ? "true" : "false") +
         " locations=" + (o.locations ? "true" : "false");
}

Graph parse_ok(const std::string& text, const IrParseOptions& options = {}) {
  Diagnostics diags;
  std::optional<Graph> g = parse_ir("t.ir", text, diags, options);
  INFO(text << "\n" << diags.render());
  REQUIRE(g);
  REQUIRE(diags.all().empty());
  return std::move(*g);
}

// "line:col: message" for every diagnostic (all of them are in t.ir unless a test says
// otherwise), after checking that parsing failed.
std::vector<std::string> errors_of(const std::string& text, const IrParseOptions& options = {}) {
  Diagnostics diags;
  std::optional<Graph> g = parse_ir("t.ir", text, diags, options);
  INFO(text << "\n" << diags.render());
  CHECK_FALSE(g);
  CHECK(diags.has_errors());
  std::vector<std::string> out;
  for (const Diagnostic& d : diags.all()) {
    CHECK(d.severity == Severity::Error);
    REQUIRE(d.loc.known());
    CHECK(d.loc.file->path == "t.ir");
    out.push_back(std::to_string(d.loc.line) + ":" + std::to_string(d.loc.col) + ": " + d.message);
  }
  return out;
}

std::string first_error(const std::string& text) {
  std::vector<std::string> errors = errors_of(text);
  REQUIRE_FALSE(errors.empty());
  return errors[0];
}

void check_round_trip(const Graph& g, const std::string& what) {
  for (const PrintOptions& options : kAllOptions) {
    std::string text = print_graph(g, options);
    INFO(what << " with " << options_str(options) << ":\n" << text);
    Graph back = parse_ok(text);
    CHECK(print_graph(back, options) == text);
    CHECK(back.inputs == g.inputs);
    CHECK(back.output == g.output);
    REQUIRE(back.arch.size() == g.arch.size());
    for (size_t i = 0; i < g.arch.size(); ++i) CHECK(back.arch[i].nodes == g.arch[i].nodes);
  }
}

// A minimal valid network around `body` (node lines after %0 = input [4]).
std::string net(const std::string& body, const std::string& tail = "  return %0\n}\n") {
  return "network n() {\n  %0 = input() {shape=[4]} : [4]\n" + body + tail;
}

// Every example round-trips, as a supernet and as the fixed network of its first
// candidates.
TEST_CASE("parse_ir reads back print_graph of every example", "[ir_parser]") {
  int done = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(NASC_SOURCE_DIR) + "/examples")) {
    if (entry.path().extension() != ".nas") continue;
    std::string name = entry.path().filename().string();
    Diagnostics diags;
    Compilation c = compile_file(entry.path().string(), CompileOptions{}, diags);
    INFO(name << "\n" << diags.render());
    REQUIRE(c.supernet);
    check_round_trip(*c.supernet, name);
    check_round_trip(specialise(*c.supernet, first_candidates(*c.supernet)), name + " (fixed)");
    ++done;
  }
  CHECK(done >= 8);
}

TEST_CASE("parse_ir reads string parameters with quotes and commas", "[ir_parser]") {
  Diagnostics diags;
  CompileOptions options;
  options.elaborate.overrides = {{"s", "\"a\\\"b, c\""}};
  Compilation c = compile_text(
      "p.nas", "network p(x: tensor[2], s: string = \"\", n: list = [1, 2]) { return x; }", options,
      diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  REQUIRE(c.supernet->params.size() == 2);
  CHECK(c.supernet->params[0].second == "\"a\\\\\\\"b, c\"");  // JSON: "a\\\"b, c"
  check_round_trip(*c.supernet, "string parameter");
}

TEST_CASE("parse_ir rebuilds the graph's fields", "[ir_parser]") {
  Diagnostics diags;
  Compilation c =
      compile_file(std::string(NASC_SOURCE_DIR) + "/examples/tiny.nas", CompileOptions{}, diags);
  REQUIRE(c.supernet);
  Graph g = parse_ok(print_graph(*c.supernet));
  CHECK(g.name == "tiny");
  CHECK(g.params ==
        std::vector<std::pair<std::string, std::string>>{{"classes", "10"}, {"width", "8"}});
  CHECK(g.inputs == std::vector<int>{0});
  CHECK(g.output == 8);
  REQUIRE(g.nodes.size() == 9);
  const Node& choice = g.nodes[5];
  CHECK(choice.op == find_op("choice"));
  CHECK(choice.inputs == std::vector<int>{2, 3, 4});
  CHECK(choice.name == "tiny/op");
  REQUIRE(choice.loc.known());
  CHECK(choice.loc.str() == "tiny.nas:5:7");
  CHECK(choice.strings_attr("candidates") == StringList{"conv", "max_pool", "identity"});
  CHECK(choice.int_attr("k") == 1);
  CHECK(g.nodes[8].shape == Shape{10});
  REQUIRE(g.arch.size() == 1);
  CHECK(g.arch[0].key == "op");
  CHECK(g.arch[0].k == 1);
  CHECK(g.arch[0].candidates == StringList{"conv", "max_pool", "identity"});
  CHECK(g.arch[0].nodes == std::vector<int>{5});
  CHECK(g.arch[0].loc.str() == "tiny.nas:5:7");
  // Locations in one file share one SourceFile.
  CHECK(g.nodes[0].loc.file == g.nodes[8].loc.file);
}

TEST_CASE("parse_ir reads names and locations from the comment", "[ir_parser]") {
  Graph g =
      parse_ok(net("  %1 = relu(%0) : [4]  # a b @c @d.nas:3:4\n"
                   "  %2 = relu(%1) : [4]  # @x.nas:1:2\n"
                   "  %3 = relu(%2) : [4]  #  @x.nas:10:20\n"
                   "  %4 = relu(%3) : [4]  # cell/relu\n"
                   "  %5 = relu(%4) : [4]  # not@a:loc\n"
                   "  %6 = relu(%5) : [4]  # a @b:c:1\n"
                   "  %7 = relu(%6) : [4]\n",
                   "  return %7\n}\n"));
  CHECK(g.nodes[1].name == "a b @c");
  CHECK(g.nodes[1].loc.str() == "d.nas:3:4");
  CHECK(g.nodes[2].name == "");
  CHECK(g.nodes[2].loc.str() == "x.nas:1:2");
  CHECK(g.nodes[3].name == "");
  CHECK(g.nodes[3].loc.str() == "x.nas:10:20");
  CHECK(g.nodes[4].name == "cell/relu");
  CHECK_FALSE(g.nodes[4].loc.known());
  CHECK(g.nodes[5].name == "not@a:loc");
  CHECK_FALSE(g.nodes[5].loc.known());
  CHECK(g.nodes[6].name == "a @b:c:1");
  CHECK_FALSE(g.nodes[6].loc.known());
  CHECK(g.nodes[7].name == "");
  CHECK_FALSE(g.nodes[7].loc.known());
  CHECK(g.nodes[2].loc.file == g.nodes[3].loc.file);
}

TEST_CASE("parse_ir reads every kind of attribute value", "[ir_parser]") {
  // Values that no op takes are checked through the value reader by way of the error
  // messages of complete_attrs, which quote the type that was read.
  SECTION("floats as attr_str writes them") {
    for (double v : {0.5, 1.0, 1e-05, 0.1, 1.5e+20, -2.25, 123456789.0}) {
      std::string text =
          net("  %1 = leaky_relu(%0) {slope=" + attr_str(v) + "} : [4]\n", "  return %1\n}\n");
      Graph g = parse_ok(text);
      CHECK(g.nodes[1].float_attr("slope") == v);
      CHECK(print_graph(g, kBare) == text);
    }
    // An int where a float is expected is converted, as in .nas source.
    Graph g = parse_ok(net("  %1 = leaky_relu(%0) {slope=1} : [4]\n", "  return %1\n}\n"));
    CHECK(g.nodes[1].float_attr("slope") == 1.0);
  }
  SECTION("inf and nan") {
    Graph g = parse_ok(net("  %1 = leaky_relu(%0) {slope=inf} : [4]\n", "  return %1\n}\n"),
                       IrParseOptions{false});
    CHECK(std::isinf(g.nodes[1].float_attr("slope")));
    g = parse_ok(net("  %1 = leaky_relu(%0) {slope=-inf} : [4]\n", "  return %1\n}\n"),
                 IrParseOptions{false});
    CHECK(g.nodes[1].float_attr("slope") == -std::numeric_limits<double>::infinity());
    g = parse_ok(net("  %1 = leaky_relu(%0) {slope=nan} : [4]\n", "  return %1\n}\n"),
                 IrParseOptions{false});
    CHECK(std::isnan(g.nodes[1].float_attr("slope")));
    CHECK(print_graph(g, kBare).find("{slope=nan}") != std::string::npos);
  }
  SECTION("bools, ints, strings with escapes, string lists") {
    std::string text =
        "network n() {\n"
        "  %0 = input() {shape=[2,3,3]} : [2,3,3]\n"
        "  %1 = relu(%0) : [2,3,3]\n"
        "  %2 = choice(%0, %1) {candidates=[\"a \\\"q\\\"\",\"b\\\\\\n\\t\\r\\x01\\x7f\"], k=2, "
        "key=\"k\\x1f\"} : [2,3,3]\n"
        "  %3 = conv(%2) {bias=true, dilation=1, groups=-1, kernel=1, out=2, pad=0, stride=1} : "
        "[2,3,3]\n"
        "  return %1\n"
        "}\n"
        "arch \"k\\x1f\" k=2 candidates=[\"a \\\"q\\\"\",\"b\\\\\\n\\t\\r\\x01\\x7f\"] "
        "nodes=[%2]\n";
    Graph g = parse_ok(text, IrParseOptions{false});
    CHECK(g.nodes[2].strings_attr("candidates") == StringList{"a \"q\"", "b\\\n\t\r\x01\x7f"});
    CHECK(g.nodes[2].string_attr("key") == "k\x1f");
    CHECK(g.nodes[3].bool_attr("bias"));
    CHECK(g.nodes[3].int_attr("groups") == -1);
    CHECK(g.arch[0].key == "k\x1f");
    CHECK(print_graph(g, kBare) == text);
  }
  SECTION("an empty list takes the attribute's type") {
    Graph g = parse_ok(net("  %1 = zero(%0) {shape=[], stride=1} : [4]\n", "  return %1\n}\n"));
    CHECK(std::holds_alternative<IntList>(g.nodes[1].attrs.at("shape")));
    // candidates=[] is read as a string list: the error is about the count, not the type.
    CHECK(first_error(net("  %1 = choice(%0) {candidates=[], key=\"e\"} : [4]\n",
                          "  return %1\n}\narch \"e\" k=1 candidates=[\"a\"] nodes=[%1]\n")) ==
          "3:8: choice `e` needs one candidate name per input: 0 names for 1 inputs");
  }
  SECTION("defaults are filled in") {
    Graph g = parse_ok(net("  %1 = zero(%0) : [4]\n", "  return %1\n}\n"));
    CHECK(g.nodes[1].attrs == Attrs{{"shape", IntList{}}, {"stride", int64_t{1}}});
  }
}

TEST_CASE("parse_ir tolerates spacing and blank lines", "[ir_parser]") {
  Graph g = parse_ok(
      "\n  network   n ( a=1, b=[1, 2], s=\"x, y=2\" )  {  \n\n"
      "%0=input(){shape=[4]}:[4]\n"
      "\t%1 = add( %0 ,%0 ) : [ 4 ]   #   spaced name\n"
      "  return   %1  \n"
      "  }\n\n"
      "\n");
  CHECK(g.params == std::vector<std::pair<std::string, std::string>>{
                        {"a", "1"}, {"b", "[1, 2]"}, {"s", "\"x, y=2\""}});
  CHECK(g.nodes[1].inputs == std::vector<int>{0, 0});
  CHECK(g.nodes[1].name == "  spaced name");
  CHECK(print_graph(g) ==
        "network n(a=1, b=[1, 2], s=\"x, y=2\") {\n"
        "  %0 = input() {shape=[4]} : [4]  # \n"
        "  %1 = add(%0, %0) : [4]  #   spaced name\n"
        "  return %1\n"
        "}\n");
}

TEST_CASE("parse_ir reports malformed IR at its line and column", "[ir_parser]") {
  // Structure.
  CHECK(first_error("") == "1:1: expected `network NAME(...) {`, got an empty text");
  CHECK(first_error("graph n() {\n") ==
        "1:1: expected `network` at the start of the IR, got `graph`");
  CHECK(first_error("network () {\n") == "1:9: expected the network's name, got `(`");
  CHECK(first_error("network n() \n") ==
        "1:11: expected `{` at the end of the network line, got `)`");
  CHECK(first_error("network n(a=1 {\n") ==
        "1:15: expected `)` to close the network's parameters before `{`");
  CHECK(first_error("network n(a=1, 2) {\n") ==
        "1:16: expected a network parameter `name=value`, got `2`");
  CHECK(first_error("network n() {\n  %0 = input() {shape=[4]} : [4]\n") ==
        "3:1: expected a node, `return %N` or `}`, got the end of the text");
  CHECK(first_error(net("", "}\n")) == "3:1: expected `return %N` before `}`");
  CHECK(first_error(net("", "  ret %0\n}\n")) ==
        "3:3: expected `return` (or a node `%N = op(...)`), got `ret`");
  CHECK(first_error(net("", "  return %1\n}\n")) ==
        "3:10: `return %1` names a node that does not exist (the graph has 1)");
  CHECK(first_error(net("", "  return 0\n}\n")) ==
        "3:10: expected the output node (`%N`), got `0`");
  CHECK(first_error(net("", "  return %0 x\n}\n")) ==
        "3:13: expected the end of the line after `return %N`, got `x`");
  CHECK(first_error(net("", "  return %0\n")) ==
        "4:1: expected `}` to close the network, got the end of the text");
  CHECK(first_error(net("", "  return %0\n} x\n")) ==
        "4:3: expected the end of the line after `}`, got `x`");
  CHECK(first_error(net("", "  return %0\n}\n%1 = relu(%0) : [4]\n")) ==
        "5:1: expected `arch` (only `arch` lines may follow the network), got `%`");

  // Node lines.
  CHECK(first_error(net("  %2 = relu(%0) : [4]\n")) ==
        "3:3: node ids must be 0, 1, 2, ... in order: expected %1, got %2");
  CHECK(first_error(net("  %1 relu(%0) : [4]\n")) ==
        "3:6: expected `=` after the node's id, got `relu`");
  CHECK(first_error(net("  % 1 = relu(%0) : [4]\n")) ==
        "3:4: expected a node number after `%`, got `1`");
  CHECK(first_error(net("  %99999999999999999999 = relu(%0) : [4]\n")) ==
        "3:4: integer `99999999999999999999` does not fit in 64 bits");
  CHECK(first_error(net("  %1 = relu(%1) : [4]\n")) ==
        "3:13: node %1 reads %1, but inputs must be earlier nodes");
  CHECK(first_error(net("  %1 = relu(%0 : [4]\n")) ==
        "3:16: expected `)` to close the inputs, got `:`");
  CHECK(first_error(net("  %1 = relu(%0) [4]\n")) ==
        "3:17: expected `:` before the node's shape, got `[`");
  CHECK(first_error(net("  %1 = relu(%0) : [4,]\n")) == "3:22: expected an integer, got `]`");
  CHECK(first_error(net("  %1 = relu(%0) : [4] x\n")) ==
        "3:23: expected the end of the line after the shape (or `# name @file:line:col`), got `x`");
  CHECK(first_error(net("  %1 = max_pool(%0) {kernel=3 pad=1} : [4]\n")) ==
        "3:31: expected `}` to close the attributes, got `pad`");
  CHECK(first_error(net("  %1 = max_pool(%0) {kernel} : [4]\n")) ==
        "3:28: expected `=` after the attribute name, got `}`");
  CHECK(first_error(net("  %1 = max_pool(%0) {kernel=3, kernel=3} : [4]\n")) ==
        "3:32: attribute `kernel` is given twice");

  // Values.
  CHECK(first_error(net("  %1 = leaky_relu(%0) {slope=} : [4]\n")) ==
        "3:30: expected a value (number, true, false, string or list), got `}`");
  CHECK(first_error(net("  %1 = leaky_relu(%0) {slope=yes} : [4]\n")) ==
        "3:30: expected a value (number, true, false, string or list), got `yes`");
  CHECK(first_error(net("  %1 = leaky_relu(%0) {slope=1.5.2} : [4]\n")) ==
        "3:30: malformed number `1.5.`");
  CHECK(first_error(net("  %1 = leaky_relu(%0) {slope=1e} : [4]\n")) ==
        "3:30: malformed number `1e`");
  CHECK(first_error(net("  %1 = leaky_relu(%0) {slope=1e999} : [4]\n")) ==
        "3:30: float `1e999` is out of range");
  CHECK(first_error(net("  %1 = leaky_relu(%0) {slope=-} : [4]\n")) ==
        "3:30: expected a value, got `-`");
  CHECK(first_error(net("  %1 = choice(%0) {key=\"ab} : [4]\n")) == "3:24: unterminated string");
  CHECK(first_error(net("  %1 = choice(%0) {key=\"a\\qb\"} : [4]\n")) ==
        "3:26: unknown escape `\\q` in string (known: \\\" \\\\ \\n \\t \\r \\xHH)");
  CHECK(first_error(net("  %1 = choice(%0) {key=\"a\\x4\"} : [4]\n")) ==
        "3:26: `\\x` must be followed by two hex digits");
  CHECK(first_error(net("  %1 = choice(%0) {candidates=[\"a\", 1]} : [4]\n")) ==
        "3:37: expected a string, got `1`");
  CHECK(first_error(net("  %1 = crop(%0) {top=[1, \"a\"]} : [4]\n")) ==
        "3:26: expected an integer, got `\"`");

  // Ops and attributes: these are collected, several per text.
  CHECK(errors_of(net("  %1 = frobnicate(%0) : [4]\n"
                      "  %2 = relu(%0, %1) : [4]\n"
                      "  %3 = relu(%0) {slope=1.0} : [4]\n"
                      "  %4 = leaky_relu(%0) {slope=\"a\"} : [4]\n"
                      "  %5 = max_pool(%0) : [4]\n"
                      "  %6 = input(%0) : [4]\n")) ==
        std::vector<std::string>{
            "3:8: unknown op `frobnicate`",
            "4:8: relu expects 1 input(s), got 2",
            "5:18: relu has no attribute `slope`; it takes none",
            "6:30: leaky_relu attribute `slope` must be float, got string",
            "7:8: max_pool requires attribute `kernel`",
            "8:8: input expects 0 input(s), got 1",
            "8:8: input requires attribute `shape`",
        });
}

TEST_CASE("parse_ir checks choices against the arch lines", "[ir_parser]") {
  auto choice_net = [](const std::string& choice_attrs, const std::string& arch) {
    return net("  %1 = relu(%0) : [4]  # r\n  %2 = choice(%0, %1) {" + choice_attrs + "} : [4]\n",
               "  return %2\n}\n" + arch);
  };
  const std::string ok_attrs = "candidates=[\"a\",\"b\"], key=\"e\"";
  parse_ok(choice_net(ok_attrs, "arch \"e\" k=1 candidates=[\"a\",\"b\"] nodes=[%2]\n"));

  CHECK(errors_of(choice_net(ok_attrs, "")) ==
        std::vector<std::string>{
            "4:8: choice %2 has key \"e\", but no `arch \"e\" ...` line follows the network"});
  CHECK(errors_of(choice_net(ok_attrs, "arch \"e\" k=1 candidates=[\"a\",\"b\"] nodes=[]\n")) ==
        std::vector<std::string>{"4:8: choice %2 has key \"e\", but the line `arch \"e\"` does "
                                 "not list it in `nodes`"});
  CHECK(errors_of(choice_net(ok_attrs, "arch \"e\" k=1 candidates=[\"a\",\"c\"] nodes=[%2]\n")) ==
        std::vector<std::string>{"7:42: arch \"e\" lists %2, whose candidates [\"a\",\"b\"] (k=1) "
                                 "differ from the group's [\"a\",\"c\"] (k=1)"});
  CHECK(errors_of(choice_net(ok_attrs, "arch \"f\" k=1 candidates=[\"a\",\"b\"] nodes=[%2]\n")) ==
        std::vector<std::string>{"7:42: arch \"f\" lists %2, a choice with key \"e\"",
                                 "4:8: choice %2 has key \"e\", but no `arch \"e\" ...` line "
                                 "follows the network"});
  CHECK(
      errors_of(choice_net(ok_attrs, "arch \"e\" k=1 candidates=[\"a\",\"b\"] nodes=[%1,%2]\n")) ==
      std::vector<std::string>{"7:42: arch \"e\" lists %1, which is a relu, not a choice"});
  CHECK(
      errors_of(choice_net(ok_attrs, "arch \"e\" k=1 candidates=[\"a\",\"b\"] nodes=[%2,%2]\n")) ==
      std::vector<std::string>{"7:45: arch \"e\" lists %2 twice, or in two arch lines"});
  CHECK(errors_of(choice_net(ok_attrs,
                             "arch \"e\" k=1 candidates=[\"a\",\"b\"] nodes=[%2]\n"
                             "arch \"e\" k=1 candidates=[\"a\",\"b\"] nodes=[]\n")) ==
        std::vector<std::string>{"8:6: arch \"e\" is declared twice"});
  CHECK(errors_of(choice_net(ok_attrs, "arch \"e\" k=1 candidates=[\"a\",\"b\"] nodes=[%3]\n")) ==
        std::vector<std::string>{
            "7:42: arch \"e\" names %3, which does not exist (the graph has 3 nodes)"});
  CHECK(errors_of(choice_net(ok_attrs,
                             "arch \"x\" k=3 candidates=[\"a\",\"b\"] nodes=[]\n"
                             "arch \"y\" k=1 candidates=[\"a\",\"a\"] nodes=[]\n"
                             "arch \"e\" k=1 candidates=[\"a\",\"b\"] nodes=[%2]\n")) ==
        std::vector<std::string>{
            "7:12: arch \"x\": k must be between 1 and the number of candidates (2), got 3",
            "8:25: arch \"y\": candidate `a` appears twice"});
  CHECK(errors_of(choice_net(ok_attrs, "arch \"e\" x=1\n")) ==
        std::vector<std::string>{"7:10: expected `k` after the arch key, got `x`"});
  CHECK(errors_of(choice_net(ok_attrs + ", k=3",
                             "arch \"e\" k=3 candidates=[\"a\",\"b\"] nodes=[%2]\n")) ==
        std::vector<std::string>{"4:8: choice `e` attribute `k` must be between 1 and the number "
                                 "of candidates (2), got 3",
                                 "7:12: arch \"e\": k must be between 1 and the number of "
                                 "candidates (2), got 3"});
}

TEST_CASE("parse_ir recomputes shapes and reports mismatches in the IR text", "[ir_parser]") {
  SECTION("a written shape that differs") {
    CHECK(errors_of(net("  %1 = max_pool(%0) {kernel=2} : [4]\n", "  return %0\n}\n")) ==
          std::vector<std::string>{"3:8: max_pool expects a 3-D input [C,H,W], got [4] from `` "
                                   "at t.ir:2:8"});
    std::string text =
        "network n() {\n"
        "  %0 = input() {shape=[2,8,8]} : [2,8,8]  # x @n.nas:1:1\n"
        "  %1 = max_pool(%0) {kernel=2} : [2,8,8]  # pool @n.nas:2:2\n"
        "  %2 = relu(%1) : [2,4,4]\n"
        "  return %2\n"
        "}\n";
    CHECK(errors_of(text) ==
          std::vector<std::string>{
              "3:34: node %1 is written with shape [2,8,8], but max_pool gives [2,4,4]"});
    Graph g = parse_ok(text, IrParseOptions{false});
    CHECK(g.nodes[1].shape == Shape{2, 8, 8});  // kept as written
  }
  SECTION("a broken shape rule, located at the node's line; nodes after it are skipped") {
    std::string text =
        "network n() {\n"
        "  %0 = input() {shape=[4]} : [4]  # x @n.nas:1:1\n"
        "  %1 = linear(%0) {out=5} : [5]  # fc @n.nas:2:3\n"
        "  %2 = add(%0, %1) : [4]  # sum @n.nas:3:3\n"
        "  %3 = relu(%2) : [7]  # r @n.nas:4:3\n"
        "  return %3\n"
        "}\n";
    Diagnostics diags;
    CHECK_FALSE(parse_ir("t.ir", text, diags));
    REQUIRE(diags.all().size() == 1);
    const Diagnostic& d = diags.all()[0];
    CHECK(d.loc.str() == "t.ir:4:8");
    CHECK(d.message ==
          "add needs all inputs to have the same shape: input 0 is [4] from `x` at t.ir:2:8 but "
          "input 1 is [5] from `fc` at t.ir:3:8");
    CHECK(d.instance_path == "sum");
    CHECK(diags.render() ==
          "t.ir:4:8: error: add needs all inputs to have the same shape: input 0 is [4] from `x` "
          "at t.ir:2:8 but input 1 is [5] from `fc` at t.ir:3:8 [in sum]\n"
          "    %2 = add(%0, %1) : [4]  # sum @n.nas:3:3\n"
          "         ^\n");
  }
  SECTION("a zero whose input was pruned needs its shape") {
    CHECK(first_error(net("  %1 = zero() : [4]\n")) ==
          "3:8: zero expects a tensor input (or, after pruning, a `shape`)");
    parse_ok(net("  %1 = zero() {shape=[4]} : [4]\n"));
  }
}

TEST_CASE("parse_ir stops at the error limit without throwing", "[ir_parser]") {
  std::string body;
  for (int i = 1; i <= 30; ++i) body += "  %" + std::to_string(i) + " = nope(%0) : [4]\n";
  Diagnostics diags(5);
  CHECK_FALSE(parse_ir("t.ir", net(body), diags));
  CHECK(diags.error_count() == 5);
}

// Truncations, deletions and single-byte corruptions of real dumps never crash the reader,
// and whatever it accepts satisfies the passes' preconditions: it prints back to valid IR,
// and dead-code elimination and pruning run on it without an internal error.
void check_mangled(const std::string& text, size_t& parsed) {
  Diagnostics diags;
  std::optional<Graph> g;
  REQUIRE_NOTHROW(g = parse_ir("t.ir", text, diags));
  CHECK(g.has_value() != diags.has_errors());
  Diagnostics unchecked;
  REQUIRE_NOTHROW(parse_ir("t.ir", text, unchecked, IrParseOptions{false}));
  if (!g) return;
  ++parsed;
  INFO(text);
  Diagnostics again;
  CHECK(parse_ir("t.ir", print_graph(*g), again));
  REQUIRE_NOTHROW(eliminate_dead_code(*g));
  REQUIRE_NOTHROW(derive_fixed_network(*g, first_candidates(*g)));
}

TEST_CASE("parse_ir survives mangled dumps", "[ir_parser]") {
  Diagnostics cd;
  Compilation c =
      compile_file(std::string(NASC_SOURCE_DIR) + "/examples/zero_join.nas", CompileOptions{}, cd);
  REQUIRE(c.supernet);
  Compilation t =
      compile_file(std::string(NASC_SOURCE_DIR) + "/examples/tiny.nas", CompileOptions{}, cd);
  REQUIRE(t.supernet);
  const char replacements[] = {'%',  '0', '9', '-', '"', '[', ']', '{',  '}', ',', ' ',
                               '\n', 'x', '#', '@', ':', '.', 'e', '\\', '(', '\0'};
  size_t parsed = 0;
  for (const std::string& text :
       {print_graph(*t.supernet), print_graph(*c.supernet, PrintOptions{true, false}),
        print_graph(specialise(*c.supernet, first_candidates(*c.supernet)))}) {
    for (size_t i = 0; i < text.size(); ++i) {
      for (char r : replacements) {
        std::string mangled = text;
        mangled[i] = r;
        check_mangled(mangled, parsed);
      }
      check_mangled(text.substr(0, i) + text.substr(i + 1), parsed);
      check_mangled(text.substr(0, i), parsed);
    }
  }
  CHECK(parsed > 100);
}

TEST_CASE("parse_ir reads a pool's stride 0 as its kernel, as the printer writes it",
          "[ir_parser]") {
  Graph g = parse_ok(
      "network n() {\n  %0 = input() {shape=[2,8,8]} : [2,8,8]\n"
      "  %1 = max_pool(%0) {kernel=2, pad=0, stride=0} : [2,4,4]\n  return %1\n}\n");
  CHECK(g.nodes[1].int_attr("stride") == 2);
  CHECK_THAT(print_graph(g), Catch::Matchers::Contains("{kernel=2, pad=0, stride=2} : [2,4,4]"));
  check_round_trip(g, "max_pool with stride 0");
}

// Found by fuzz_ir (tests/fuzz/crashes/ir): a gradient op that only writes parameter
// gradients has the shape [], and reading it tripped the consumer's shape rule's check.
TEST_CASE("parse_ir refuses an effect op as an input or as the output", "[ir_parser]") {
  const std::string effect = "  %1 = linear_grad_weight(%0, %0) {fwd=0} : []\n";
  CHECK(errors_of(net(effect + "  %2 = relu(%1) : [4]\n")) ==
        std::vector<std::string>{"4:13: %1 is linear_grad_weight, which produces no tensor (it "
                                 "only writes gradients), so it cannot be an input"});
  CHECK(errors_of(net(effect, "  return %1\n}\n")) ==
        std::vector<std::string>{"4:10: %1 is linear_grad_weight, which produces no tensor (it "
                                 "only writes gradients), so it cannot be the output"});
}

}  // namespace
}  // namespace nas
