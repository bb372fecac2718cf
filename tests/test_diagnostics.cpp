// Bad input to the front end: every diagnostic is located (file:line:col), states the
// rule and then the values, names the module instance path, and comes with the source
// line and a caret. Several independent errors are collected; one mistake gives one
// error (no cascades); hostile input (deep nesting, huge expressions, unbounded loops and
// recursion, binary and 10 MB files) gives a clear error quickly and never a crash or an
// internal error. Each test checks the message and the line:col.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "compiler/frontend/loader.h"
#include "compiler/ir/ir_parser.h"
#include "compiler/ir/ir_printer.h"
#include "compiler/ir/op_registry.h"
#include "compiler/pipeline/pipeline.h"
#include "support/did_you_mean.h"

namespace nas {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  Diagnostics diags{20};
  bool ok = false;     // a supernet was built
  bool threw = false;  // an exception escaped compile_text (never acceptable)
  std::string what;    // its message
  double seconds = 0;
  const std::vector<Diagnostic>& all() const { return diags.all(); }
  std::vector<const Diagnostic*> errors() const {
    std::vector<const Diagnostic*> out;
    for (const auto& d : diags.all())
      if (d.severity == Severity::Error) out.push_back(&d);
    return out;
  }
};

// Compiles on a large stack, as nasc does: deeply nested input is part of these tests,
// and the evaluator's recursion must not depend on the test runner's stack.
Outcome compile_with(const std::string& path, const std::string& text, const CompileOptions& opt,
                     bool from_file = false) {
  Outcome out;
  auto start = std::chrono::steady_clock::now();
  run_with_large_stack([&] {
    try {
      Compilation c =
          from_file ? compile_file(path, opt, out.diags) : compile_text(path, text, opt, out.diags);
      out.ok = c.supernet.has_value();
    } catch (const std::exception& e) {
      out.threw = true;
      out.what = e.what();
    }
  });
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

Outcome compile(const std::string& text, const CompileOptions& opt = {}) {
  return compile_with("t.nas", text, opt);
}

// The only error of `text`: checks that there is exactly one, that it is at line:col,
// and that its message contains each fragment. Returns it for further checks.
Diagnostic one_error(const Outcome& r, int line, int col, std::vector<std::string> fragments) {
  INFO(r.diags.render());
  REQUIRE_FALSE(r.threw);
  REQUIRE_FALSE(r.ok);
  REQUIRE(r.errors().size() == 1);
  const Diagnostic& d = *r.errors()[0];
  CHECK(d.loc.line == line);
  CHECK(d.loc.col == col);
  for (const auto& f : fragments) CHECK_THAT(d.message, Catch::Matchers::Contains(f));
  return d;
}

Diagnostic one_error(const std::string& text, int line, int col,
                     std::vector<std::string> fragments) {
  return one_error(compile(text), line, col, std::move(fragments));
}

// Error i of several: location and fragments.
void nth_error(const Outcome& r, size_t i, int line, int col, std::vector<std::string> fragments) {
  INFO(r.diags.render());
  REQUIRE(r.errors().size() > i);
  const Diagnostic& d = *r.errors()[i];
  CHECK(d.loc.line == line);
  CHECK(d.loc.col == col);
  for (const auto& f : fragments) CHECK_THAT(d.message, Catch::Matchers::Contains(f));
}

// A fresh folder under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("nasc_diag_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    fs::path p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
};

const char* kNet = "network n(x: tensor[3, 8, 8]) {\n";

}  // namespace

// ---- rendering ---------------------------------------------------------------------------

TEST_CASE("a diagnostic renders as file:line:col, message, instance path, line and caret",
          "[diagnostics][render]") {
  Outcome r = compile(
      "module blk(x: tensor) {\n"
      "  return relu(y);\n"
      "}\n"
      "network n(x: tensor[3, 8, 8]) { return blk(x); }\n");
  Diagnostic d = one_error(r, 2, 15, {"unknown name `y`", "did you mean `x`?"});
  CHECK(d.instance_path == "n/blk");
  CHECK(r.diags.render() ==
        "t.nas:2:15: error: unknown name `y`; did you mean `x`? [in n/blk]\n"
        "    return relu(y);\n"
        "                ^\n");
}

TEST_CASE("columns count bytes, the caret counts characters", "[diagnostics][render]") {
  // "é" is two bytes: the `+` is at byte column 14, the 13th character.
  Outcome r = compile(std::string(kNet) + "let a = \"é\" + 1;\nreturn x; }\n");
  one_error(r, 2, 14, {"operator `+` is not defined for string \"é\" and int 1"});
  CHECK_THAT(r.diags.render(), Catch::Matchers::Contains("  let a = \"é\" + 1;\n"
                                                         "              ^\n"));
}

TEST_CASE("a very long line is cut to a window around the caret", "[diagnostics][render]") {
  std::string pad(5000, ' ');
  Outcome r = compile(std::string(kNet) + pad + "let a = zz;\nreturn x; }\n");
  one_error(r, 2, 5009, {"unknown name `zz`"});
  std::string text = r.diags.render();
  std::vector<std::string> lines;
  for (size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(text.substr(at, nl - at));
  REQUIRE(lines.size() == 3);
  CHECK(lines[1].size() < 200);
  CHECK(lines[1].find("...") != std::string::npos);
  size_t caret = lines[2].find('^');
  REQUIRE(caret != std::string::npos);
  CHECK(lines[1].substr(caret, 2) == "zz");
}

TEST_CASE("a binary file is refused without quoting raw bytes", "[diagnostics][render][files]") {
  std::string bytes = "let a = 1;\nlet b\x01 = \xff\xfe 2;\n";
  Outcome r = compile(bytes);
  one_error(r, 2, 10, {"not a .nas text file: invalid UTF-8 byte 0xFF"});
  // The \x01 comes first, but it is valid UTF-8 (the parser would call it an unexpected
  // control character); the 0xFF is the reason.
  Outcome r2 = compile("let b = \"\xff\";\n");
  one_error(r2, 1, 10, {"invalid UTF-8 byte 0xFF", "binary file"});
  for (unsigned char c : r.diags.render() + r2.diags.render())
    CHECK((c >= 32 || c == '\n') == true);
}

TEST_CASE("deep recursion: the instance path is kept whole, and shortened when printed",
          "[diagnostics][render][limits]") {
  Outcome r = compile(
      "module r(x: tensor, d: int) { return r(x, d + 1); }\n"
      "network n(x: tensor[1, 8, 8]) { return r(x, 0); }\n");
  Diagnostic d = one_error(r, 1, 38, {"module calls nested deeper than 128", "recursion"});
  CHECK(d.instance_path.size() > 200);
  CHECK(d.instance_path.rfind("n/r/r/", 0) == 0);
  std::string first_line = r.diags.render().substr(0, r.diags.render().find('\n'));
  CHECK(first_line.size() < 400);
  CHECK_THAT(first_line, Catch::Matchers::Contains("/.../"));
}

// ---- syntax --------------------------------------------------------------------------------

TEST_CASE("syntax errors: unexpected tokens, in words", "[diagnostics][syntax]") {
  one_error(std::string(kNet) + "  let 3 = x;\n  return x;\n}\n", 2, 7,
            {"syntax error: unexpected '3'; expected a name"});
  one_error(std::string(kNet) + "  return relu(x) +;\n}\n", 2, 19,
            {"syntax error: unexpected ';'; expected an expression"});
  one_error(std::string(kNet) + "  return x;\n]\n", 3, 1,
            {"unexpected ']'; expected a statement or '}'"});
  one_error("lorem ipsum\n", 1, 1,
            {"unexpected 'lorem'; expected 'import', 'let', 'module' or 'network'"});
  one_error(std::string(kNet) + "  let h = x @ 2;\n  return h;\n}\n", 2, 13,
            {"syntax error: unexpected character '@'"});
  one_error(std::string(kNet) + "  for i range(3) { }\n  return x;\n}\n", 2, 8,
            {"expected 'in' before 'range'"});
}

TEST_CASE("a missing semicolon is reported after the previous token", "[diagnostics][syntax]") {
  // Not at the `return` on the next line, which is where ANTLR notices it.
  one_error(std::string(kNet) + "  let h = relu(x)\n  return h;\n}\n", 2, 18,
            {"syntax error: expected ';' before 'return'"});
}

TEST_CASE("an early end of file is reported after the last token", "[diagnostics][syntax]") {
  one_error(std::string(kNet) + "  return x\n\n\n", 2, 11,
            {"unexpected end of file; expected ';'"});
  one_error("network", 1, 8, {"unexpected end of file; expected a name"});
}

TEST_CASE("unterminated strings and comments", "[diagnostics][syntax]") {
  one_error(std::string(kNet) + "  let a = \"abc;\n  return x;\n}\n", 2, 11,
            {"unterminated string"});
  one_error(std::string(kNet) + "  /* no end\n  return x;\n}\n", 2, 3,
            {"unterminated comment: `/*` without a closing `*/`"});
}

TEST_CASE("syntax errors: one per statement, several per file", "[diagnostics][syntax]") {
  // ANTLR recovers and trips again on `= x` and `,`; only the first error of a
  // statement is kept.
  one_error(std::string(kNet) + "  let 3 = x;\n  return x;\n}\n", 2, 7, {"unexpected '3'"});
  one_error(std::string(kNet) + "  let h = choice \"a\" { c: x,, d: x };\n  return x;\n}\n", 2, 29,
            {"unexpected ','"});
  // Errors in different statements and modules are all reported.
  Outcome r = compile(
      "module a(x: tensor) { return x }\n"
      "module b(x: tensor) {\n"
      "  let = 3;\n"
      "  return x;\n"
      "}\n"
      "network n(x: tensor[1, 8, 8]) { return a(x; }\n");
  INFO(r.diags.render());
  REQUIRE(r.errors().size() == 3);
  nth_error(r, 0, 1, 31, {"expected ';' before '}'"});
  nth_error(r, 1, 3, 6, {"expected a name before '='"});
  nth_error(r, 2, 6, 43, {"expected ')' before ';'"});
}

TEST_CASE("many syntax errors stop at the error limit", "[diagnostics][syntax]") {
  std::string text = kNet;
  for (int i = 0; i < 50; ++i) text += "  let = " + std::to_string(i) + ";\n";
  text += "  return x;\n}\n";
  Outcome r = compile(text);
  INFO(r.diags.render());
  REQUIRE_FALSE(r.threw);
  CHECK(r.errors().size() == 20);
  nth_error(r, 0, 2, 6, {"expected a name before '='"});
  nth_error(r, 19, 21, 6, {"expected a name before '='"});
}

// ---- names ---------------------------------------------------------------------------------

TEST_CASE("unknown names, with suggestions", "[diagnostics][names]") {
  Diagnostic d = one_error(std::string(kNet) + "  let width = 4;\n  return conv(x, widht, 3);\n}\n",
                           3, 18, {"unknown name `widht`; did you mean `width`?"});
  CHECK(d.instance_path == "n");
  one_error(std::string(kNet) + "  return rleu(x);\n}\n", 2, 10,
            {"unknown module or function `rleu`; did you mean `relu`?"});
  one_error(std::string(kNet) + "  h = relu(x);\n  return h;\n}\n", 2, 3,
            {"assignment to undeclared variable `h`; declare it with `let h = ...`"});
  one_error(std::string(kNet) + "  let h = x;\n  let h = x;\n  return h;\n}\n", 3, 7,
            {"`h` is already declared in this scope"});
  one_error(std::string(kNet) + "  let f = 3;\n  return f(x);\n}\n", 3, 10,
            {"`f` is a variable, not a module or function"});
  one_error(std::string(kNet) + "  return relu;\n}\n", 2, 10,
            {"`relu` is a module or function; call it like `relu(...)`"});
  one_error("module m(x: tensr) { return x; }\nnetwork n(x: tensor[1, 8, 8]) { return m(x); }\n", 1,
            13, {"unknown type `tensr`; types are int, float, bool, string, list, tensor"});
  one_error("network n(x: tensor[1, 8, 8], w: flot = 2) { return x; }\n", 1, 34,
            {"unknown type `flot`"});
}

TEST_CASE("an unknown callee is reported even when its argument already failed",
          "[diagnostics][names][cascade]") {
  Outcome r = compile(
      "module a(x: tensor) { return relu(y); }\n"
      "network n(x: tensor[1, 8, 8]) {\n"
      "  let h = a(x);\n"
      "  return foo(h);\n"
      "}\n");
  INFO(r.diags.render());
  REQUIRE(r.errors().size() == 2);
  nth_error(r, 0, 1, 35, {"unknown name `y`"});
  CHECK(r.errors()[0]->instance_path == "n/a");
  nth_error(r, 1, 4, 10, {"unknown module or function `foo`"});
  CHECK(r.errors()[1]->instance_path == "n");
}

// ---- arguments -----------------------------------------------------------------------------

TEST_CASE("module arguments: counts, names and types", "[diagnostics][args]") {
  const std::string m = "module a(x: tensor, c: int) { return conv(x, c, 3, pad=1); }\n";
  one_error(m + kNet + "  return a(x);\n}\n", 3, 10, {"module `a` requires argument `c` (int)"});
  one_error(m + kNet + "  return a(x, 1, 2);\n}\n", 3, 10, {"module `a` takes 2 arguments, got 3"});
  one_error(m + kNet + "  return a(x, d=3);\n}\n", 3, 15,
            {"module `a` has no parameter `d` (its parameters: x, c)"});
  one_error(m + kNet + "  return a(x, 1, c=2);\n}\n", 3, 18,
            {"argument `c` of `a` is given twice"});
  // The caret is on the caller's argument, so the error is in the caller's instance.
  Diagnostic d = one_error(m + kNet + "  return a(x, \"s\");\n}\n", 3, 15,
                           {"argument `c` of `a` must be int, got string \"s\""});
  CHECK(d.instance_path == "n");
  one_error(m + kNet + "  return a(c=1, x);\n}\n", 3, 17,
            {"a positional argument cannot follow a named one"});
  one_error(m + kNet + "  return a(4, 1);\n}\n", 3, 12,
            {"argument `x` of `a` must be tensor, got int 4"});
}

TEST_CASE("a module without `return` used as a tensor", "[diagnostics][args]") {
  one_error(
      "module a(x: tensor) { let h = relu(x); }\n" + std::string(kNet) +
          "  return relu(a(x));\n}\n",
      3, 10,
      {"relu expects a tensor as its first argument, got nothing (a module without `return`)"});
}

TEST_CASE("a tensor parameter's declared shape is checked", "[diagnostics][args][shapes]") {
  one_error(
      "module m(x: tensor[4, 8, 8]) { return x; }\n" + std::string(kNet) + "  return m(x);\n}\n", 3,
      12, {"argument `x` of `m` must have shape [4,8,8], got [3,8,8] from `x`"});
}

TEST_CASE("mul by a tensor: one factor per channel in either order, else the rule at the `*`",
          "[diagnostics][shapes]") {
  for (const char* ok : {"x * global_avg_pool(x)", "sigmoid(global_avg_pool(x)) * x",
                         "x * avg_pool(x, 8)", "avg_pool(x, 8) * x", "x * relu(x)"}) {
    Outcome r = compile(std::string(kNet) + "  return flatten(" + ok + ");\n}\n");
    INFO(ok << "\n" << r.diags.render());
    CHECK(r.ok);
  }
  const std::string rule =
      "mul multiplies two tensors of the same shape, or a [C,H,W] tensor by one factor per "
      "channel ([C] or [C,1,1], in either order): ";
  one_error(
      std::string(kNet) + "  let g = linear(global_avg_pool(x), 5);\n  return flatten(x * g);\n}\n",
      3, 20,
      {rule + "input 0 is [3,8,8] from `x` at t.nas:1:11",
       "but input 1 is [5] from `n/linear` at t.nas:2:11"});
  one_error(std::string(kNet) +
                "  let g = conv(avg_pool(x, 8), 2, kernel=1);\n  return flatten(g * x);\n}\n",
            3, 20,
            {rule + "input 0 is [2,1,1] from `n/conv` at t.nas:2:11",
             "but input 1 is [3,8,8] from `x` at t.nas:1:11"});
  one_error(std::string(kNet) + "  let g = conv(x, 1, kernel=1);\n  return flatten(x * g);\n}\n", 3,
            20, {rule, "input 1 is [1,8,8] from `n/conv` at t.nas:2:11"});
}

TEST_CASE("op arguments: counts, attribute names and types", "[diagnostics][args]") {
  one_error(std::string(kNet) + "  return relu(x, 3, 4);\n}\n", 2, 18,
            {"relu takes no attributes after its tensor input, got 2 more positional arguments"});
  one_error(std::string(kNet) + "  return conv(x, 4, 3, 1, 0, 1, 1, false, 7);\n}\n", 2, 43,
            {"conv takes at most 7 attributes (out, kernel, stride, pad, dilation, groups, bias)",
             "got 1 more positional argument"});
  one_error(std::string(kNet) + "  return conv(x, 4, kernl=3);\n}\n", 2, 21,
            {"conv has no attribute `kernl` (its attributes: out, kernel"});
  one_error(std::string(kNet) + "  return conv(x, 4, kernel=\"3\");\n}\n", 2, 21,
            {"conv attribute `kernel` must be int, got string \"3\""});
  one_error(std::string(kNet) + "  return conv(3, x);\n}\n", 2, 10,
            {"conv expects a tensor as its first argument, got int 3"});
  one_error(std::string(kNet) + "  return conv(x, 4);\n}\n", 2, 10, {"kernel"});
  one_error(std::string(kNet) + "  return relu(x, x);\n}\n", 2, 10,
            {"relu expects 1 input, got 2"});
}

TEST_CASE("builtin function arguments", "[diagnostics][args]") {
  one_error(std::string(kNet) + "  let r = range(1, 2, 3, 4);\n  return x;\n}\n", 2, 11,
            {"range() takes 1 to 3 arguments, got 4 (usage: range(stop) or range(start, stop"});
  one_error(std::string(kNet) + "  let r = range(\"a\");\n  return x;\n}\n", 2, 11,
            {"range() stop must be int, got string \"a\""});
  one_error(std::string(kNet) + "  let r = len(3);\n  return x;\n}\n", 2, 11,
            {"len() argument must be a list, got int 3"});
  one_error(std::string(kNet) + "  let r = max();\n  return x;\n}\n", 2, 11,
            {"max() takes 1 to 64 arguments, got 0"});
  one_error(std::string(kNet) + "  let r = [1, 2][5];\n  return x;\n}\n", 2, 18,
            {"index 5 is out of range for length 2"});
  one_error(std::string(kNet) + "  let r = 1 / 0;\n  return x;\n}\n", 2, 13,
            {"integer division by zero"});
  one_error(std::string(kNet) + "  let r = 9223372036854775807 + 1;\n  return x;\n}\n", 2, 31,
            {"integer overflow in 9223372036854775807 + 1"});
  one_error(std::string(kNet) + "  if 1 { }\n  return x;\n}\n", 2, 6,
            {"an `if` condition must be bool, got int 1"});
  one_error(std::string(kNet) + "  assert channels(x) == 4, \"want 4 channels\";\n  return x;\n}\n",
            2, 3, {"assertion failed: want 4 channels"});
}

// ---- shapes --------------------------------------------------------------------------------

TEST_CASE("concat of different spatial sizes names both inputs and the instance",
          "[diagnostics][shapes]") {
  Diagnostic d = one_error(
      "module blk(x: tensor, c: int) {\n"
      "  let h = conv(x, c, 3, pad=1);\n"
      "  return concat(h, max_pool(x, 2));\n"
      "}\n" +
          std::string(kNet) + "  return blk(x, 4);\n}\n",
      3, 10,
      {"concat along axis 0 needs equal sizes on the other axes", "[4,8,8] from `n/blk/conv`",
       "[3,4,4] from `n/blk/max_pool`"});
  CHECK(d.instance_path == "n/blk");
}

TEST_CASE("conv channel and group rules", "[diagnostics][shapes]") {
  one_error(std::string(kNet) + "  return conv(x, 4, 3, groups=2);\n}\n", 2, 10,
            {"conv groups=2 must divide the 3 input channels of [3,8,8] from `x`"});
  one_error(std::string(kNet) + "  return conv(x, 4, 3, groups=3);\n}\n", 2, 10,
            {"conv groups=3 must divide the output channels, got out=4"});
  one_error(std::string(kNet) + "  return conv(x, 4, 9);\n}\n", 2, 10, {"kernel"});
  one_error(std::string(kNet) + "  return linear(x, 10);\n}\n", 2, 10,
            {"linear expects a 1-D input [F], got [3,8,8] from `x`"});
  one_error(std::string(kNet) + "  return conv(x, 4, 3) + x;\n}\n", 2, 24,
            {"add needs all inputs to have the same shape", "[4,6,6]", "[3,8,8]"});
}

TEST_CASE("a shape error deep in modules and choices names the instance path",
          "[diagnostics][shapes]") {
  Diagnostic d = one_error(
      "module cell(x: tensor, c: int) {\n"
      "  let a = conv(x, c, 3, pad=1);\n"
      "  let b = conv(x, c + 1, 3, pad=1);\n"
      "  return a + b;\n"
      "}\n"
      "module stage(x: tensor) { return cell(x, 4); }\n" +
          std::string(kNet) +
          "  return choice \"op\" { s: stage(x), i: identity(x) };\n"
          "}\n",
      4, 12,
      {"add needs all inputs to have the same shape", "`n/op/s/stage/cell/conv`",
       "`n/op/s/stage/cell/conv_1`"});
  CHECK(d.instance_path == "n/op/s/stage/cell");
}

TEST_CASE("choice candidates with different shapes: the error names both",
          "[diagnostics][shapes]") {
  one_error(std::string(kNet) +
                "  return choice \"op\" {\n"
                "    small: conv(x, 4, 3),\n"
                "    same:  conv(x, 4, 3, pad=1),\n"
                "  };\n"
                "}\n",
            2, 10,
            {"choice `op` candidates must produce the same shape", "`small` gives [4,6,6]",
             "`same` gives [4,8,8]"});
  one_error(std::string(kNet) + "  return choice { a: conv(x, 4, 1), b: conv(x, 8, 1) };\n}\n", 2,
            10,
            {"candidates must produce the same shape", "`a` gives [4,8,8]", "`b` gives [8,8,8]"});
}

TEST_CASE("choice and join rules", "[diagnostics][shapes]") {
  one_error(std::string(kNet) + "  return choice \"k\" { a: x, a: x };\n}\n", 2, 29,
            {"candidate `a` appears twice in choice `k`"});
  one_error(std::string(kNet) + "  return choice { };\n}\n", 2, 10,
            {"choice `n/choice` needs at least one candidate"});
  one_error(std::string(kNet) + "  return join(k=3) { a: x, b: x };\n}\n", 2, 10,
            {"join `n/join` picks k=3 of 2 inputs; k must be between 1 and 2"});
  one_error(std::string(kNet) + "  return choice \"k\" { a: 3 };\n}\n", 2, 26,
            {"candidate `a` must be a tensor, got int 3"});
  one_error(std::string(kNet) + "  return choice(k=2) { a: x };\n}\n", 2, 17,
            {"choice takes only `key`; got `k` (use join(k=...) to pick several inputs)"});
  Outcome r = compile(std::string(kNet) +
                      "  let a = choice \"k\" { p: x, q: relu(x) };\n"
                      "  return choice \"k\" { p: a, r: relu(a) };\n"
                      "}\n");
  Diagnostic d =
      one_error(r, 3, 10,
                {"choices sharing key `k` must have the same candidates",
                 "this one has [\"p\",\"r\"] (k=1)", "the first has [\"p\",\"q\"] (k=1)"});
  REQUIRE(d.notes.size() == 1);
  CHECK(d.notes[0].first.line == 2);
  CHECK(d.notes[0].first.col == 11);
}

// ---- one mistake, one error -----------------------------------------------------------------

TEST_CASE("errors do not cascade", "[diagnostics][cascade]") {
  // A failed assignment poisons `h`: the add below must not complain about the old h.
  one_error(std::string(kNet) +
                "  let h = relu(x);\n"
                "  h = conv(h, 4, kernel=\"3\");\n"
                "  h = h + conv(x, 8, 1);\n"
                "  return h;\n"
                "}\n",
            3, 18, {"conv attribute `kernel` must be int"});
  // A failed `return` is not reported again as a missing return.
  one_error(std::string(kNet) + "  return relu(y);\n}\n", 2, 15, {"unknown name `y`"});
  // A module whose body failed before its return does not return "nothing" to its caller.
  one_error("module a(x: tensor, c: int) {\n  if c > zz { return x; }\n  return relu(x);\n}\n" +
                std::string(kNet) + "  return conv(a(x, 1), 4, 1);\n}\n",
            2, 10, {"unknown name `zz`"});
  // A bad argument stops the call: no second error from inside the module.
  one_error("module a(x: tensor, c: int) { return conv(x, c, 1); }\n" + std::string(kNet) +
                "  return a(x, \"four\");\n}\n",
            3, 15, {"argument `c` of `a` must be int"});
}

TEST_CASE("independent errors are all reported, each with its instance path",
          "[diagnostics][cascade]") {
  Outcome r = compile(
      "module a(x: tensor) { return relu(y); }\n"
      "module b(x: tensor) { return conv(x, 4, kernel=\"3\"); }\n"
      "network n(x: tensor[1, 8, 8]) {\n"
      "  let p = a(x);\n"
      "  let q = b(x);\n"
      "  let r = max_pool(x, 3, bogus=1);\n"
      "  return x;\n"
      "}\n");
  INFO(r.diags.render());
  REQUIRE(r.errors().size() == 3);
  nth_error(r, 0, 1, 35, {"unknown name `y`"});
  CHECK(r.errors()[0]->instance_path == "n/a");
  nth_error(r, 1, 2, 41, {"conv attribute `kernel` must be int, got string \"3\""});
  CHECK(r.errors()[1]->instance_path == "n/b");
  nth_error(r, 2, 6, 26, {"max_pool has no attribute `bogus`"});
  CHECK(r.errors()[2]->instance_path == "n");
}

// ---- imports --------------------------------------------------------------------------------

TEST_CASE("import cycles are reported at the import that closes them", "[diagnostics][imports]") {
  TempDir dir;
  dir.write("a.nas", "import \"b.nas\";\nmodule ma(x: tensor) { return x; }\n");
  dir.write("b.nas", "\nimport \"a.nas\";\nmodule mb(x: tensor) { return x; }\n");
  std::string main =
      dir.write("main.nas", "import \"a.nas\";\nnetwork n(x: tensor[1, 8, 8]) { return ma(x); }\n");
  Outcome r = compile_with(main, "", {}, /*from_file=*/true);
  Diagnostic d = one_error(r, 2, 8, {"import cycle: a.nas -> b.nas -> a.nas"});
  CHECK(d.loc.file->path == (dir.path / "b.nas").string());

  std::string self =
      dir.write("self.nas", "import \"self.nas\";\nnetwork n(x: tensor[1, 8, 8]) { return x; }\n");
  one_error(compile_with(self, "", {}, true), 1, 8, {"import cycle: self.nas -> self.nas"});
}

TEST_CASE("missing and unreadable imports", "[diagnostics][imports]") {
  TempDir dir;
  fs::create_directories(dir.path / "folder.nas");
  std::string main = dir.write("main.nas",
                               "import \"nope.nas\";\n"
                               "import \"folder.nas\";\n"
                               "network n(x: tensor[1, 8, 8]) { return x; }\n");
  Outcome r = compile_with(main, "", {}, true);
  INFO(r.diags.render());
  REQUIRE(r.errors().size() == 2);
  nth_error(r, 0, 1, 8, {"cannot find import \"nope.nas\" (searched " + dir.path.string()});
  nth_error(r, 1, 2, 8, {"cannot find import \"folder.nas\""});

  Outcome missing = compile_with((dir.path / "absent.nas").string(), "", {}, true);
  INFO(missing.diags.render());
  REQUIRE(missing.errors().size() == 1);
  CHECK(missing.errors()[0]->loc.line == 0);  // about the file, not a line of it
  CHECK_THAT(missing.errors()[0]->message, Catch::Matchers::Contains("no such file"));
}

TEST_CASE("errors in an imported file name that file", "[diagnostics][imports]") {
  TempDir dir;
  dir.write("lib/broken.nas", "module m(x: tensor) {\n  return relu(x)\n}\n");
  dir.write("lib/binary.nas", std::string("module\0", 7));
  CompileOptions opt;
  opt.include_paths = {(dir.path / "lib").string()};

  std::string a = dir.write(
      "a.nas", "import \"broken.nas\";\nnetwork n(x: tensor[1, 8, 8]) { return m(x); }\n");
  Diagnostic d = one_error(compile_with(a, "", opt, true), 2, 17, {"expected ';' before '}'"});
  CHECK(d.loc.file->path == (dir.path / "lib" / "broken.nas").string());

  std::string b =
      dir.write("b.nas", "import \"binary.nas\";\nnetwork n(x: tensor[1, 8, 8]) { return x; }\n");
  d = one_error(compile_with(b, "", opt, true), 1, 7, {"not a .nas text file: NUL byte"});
  CHECK(d.loc.file->path == (dir.path / "lib" / "binary.nas").string());

  // Defined twice in one file (in two files, the importer's own one wins: see the
  // per-file tests below).
  std::string c = dir.write("lib/twice.nas",
                            "module m(x: tensor) { return x; }\n"
                            "module m(x: tensor) { return relu(x); }\n");
  std::string main =
      dir.write("c.nas", "import \"twice.nas\";\nnetwork n(x: tensor[1, 8, 8]) { return m(x); }\n");
  d = one_error(compile_with(main, "", opt, true), 2, 8,
                {"module `m` is defined twice in this file"});
  CHECK(d.loc.file->path == c);
  REQUIRE(d.notes.size() == 1);
  CHECK(d.notes[0].first.file->path == c);
  CHECK(d.notes[0].first.line == 1);
  CHECK(d.notes[0].first.col == 8);
}

TEST_CASE("a diamond import is fine", "[diagnostics][imports]") {
  TempDir dir;
  dir.write("base.nas", "module base(x: tensor) { return relu(x); }\n");
  dir.write("l.nas", "import \"base.nas\";\nmodule l(x: tensor) { return base(x); }\n");
  dir.write("r.nas", "import \"base.nas\";\nmodule r(x: tensor) { return base(x); }\n");
  std::string main = dir.write(
      "main.nas",
      "import \"l.nas\";\nimport \"r.nas\";\nnetwork n(x: tensor[1, 8, 8]) { return l(r(x)); }\n");
  Outcome r = compile_with(main, "", {}, true);
  INFO(r.diags.render());
  CHECK(r.ok);
  CHECK(r.all().empty());
}

// ---- names resolve per file ------------------------------------------------------------------

namespace {

// The supernet of the file at `path` (failing the test with the diagnostics otherwise).
Graph compile_file_ok(const std::string& path) {
  Diagnostics diags;
  Compilation c = compile_file(path, {}, diags);
  INFO(diags.render());
  REQUIRE(c.supernet);
  return *c.supernet;
}

int count_op(const Graph& g, const std::string& op) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.op->name == op;
  return n;
}

}  // namespace

TEST_CASE("a module or network named like a built-in op or function is an error at its name",
          "[diagnostics][names][shadow]") {
  // Modules are looked up before ops: a module `relu` would replace the op for every
  // caller in its file, silently.
  one_error(
      "module relu(x: tensor) { return x; }\nnetwork n(x: tensor[1, 8, 8]) { return relu(x); }\n",
      1, 8, {"module `relu` shadows the built-in op `relu`; rename it"});
  one_error("network conv(x: tensor[1, 8, 8]) { return x; }\n", 1, 9,
            {"network `conv` shadows the built-in op `conv`; rename it"});
  one_error("module range(n: int) { return n; }\nnetwork n(x: tensor[1, 8, 8]) { return x; }\n", 1,
            8, {"module `range` shadows the built-in function `range`; rename it"});
  one_error("module sum(n: int) { return n; }\nnetwork n(x: tensor[1, 8, 8]) { return x; }\n", 1, 8,
            {"module `sum` shadows the built-in function `sum`"});
  // Also in an imported file, where nothing calls it: located in that file.
  TempDir dir;
  std::string lib = dir.write("lib.nas", "\nmodule  batchnorm(x: tensor) { return x; }\n");
  std::string main =
      dir.write("main.nas", "import \"lib.nas\";\nnetwork n(x: tensor[1, 8, 8]) { return x; }\n");
  Diagnostic d = one_error(compile_with(main, "", {}, true), 2, 9,
                           {"module `batchnorm` shadows the built-in op `batchnorm`"});
  CHECK(d.loc.file->path == lib);
}

TEST_CASE("no shipped stdlib or example module is named like a built-in",
          "[diagnostics][names][shadow]") {
  for (const char* folder : {NASC_STDLIB_DIR, NASC_SOURCE_DIR "/examples"})
    for (const auto& entry : fs::directory_iterator(folder)) {
      if (entry.path().extension() != ".nas") continue;
      Diagnostics diags;
      auto program = load_program(entry.path().string(), default_search_paths(), diags);
      INFO(entry.path() << "\n" << diags.render());
      REQUIRE(program);
      for (const auto& file : program->files)
        for (const auto& m : file->modules) CHECK(shadowed_builtin(m).empty());
    }
}

TEST_CASE("an importer's module never replaces the one an imported file calls",
          "[diagnostics][imports][scope]") {
  // darts_ops.nas calls the dil_conv of the ops.nas it imports (relu, dwconv, 1x1 conv,
  // batch norm), whatever the main file calls dil_conv.
  TempDir dir;
  std::string main = dir.write("main.nas",
                               "import \"darts_ops.nas\";\n"
                               "module dil_conv(x: tensor, c_out: int, kernel: int) {\n"
                               "  return identity(x);\n"
                               "}\n"
                               "network n(x: tensor[8, 16, 16]) {\n"
                               "  let a = darts_op(x, \"dil_conv_3x3\", 8);\n"
                               "  return dil_conv(a, 8, 3);\n"
                               "}\n");
  Graph g = compile_file_ok(main);
  CHECK(count_op(g, "dwconv") == 1);
  CHECK(count_op(g, "batchnorm") == 1);
  CHECK(count_op(g, "identity") == 1);  // the main file's own dil_conv
  CHECK(g.nodes[g.output].op->name == "identity");
}

TEST_CASE("a file-level constant means what its own file says", "[diagnostics][imports][scope]") {
  TempDir dir;
  dir.write("lib.nas",
            "let width = 4;\n"
            "module narrow(x: tensor) { return conv(x, width, 1); }\n");
  std::string main = dir.write("main.nas",
                               "import \"lib.nas\";\n"
                               "let width = 16;\n"
                               "network n(x: tensor[1, 8, 8]) {\n"
                               "  return conv(narrow(x), width, 1);\n"
                               "}\n");
  Graph g = compile_file_ok(main);
  REQUIRE(g.output >= 0);
  const Node& out = g.nodes[g.output];
  CHECK(out.shape == Shape{16, 8, 8});
  CHECK(g.nodes[out.inputs[0]].shape == Shape{4, 8, 8});
}

TEST_CASE("a name two imports define is ambiguous where it is used",
          "[diagnostics][imports][scope]") {
  TempDir dir;
  std::string a = dir.write("a.nas", "let w = 1;\nmodule block(x: tensor) { return relu(x); }\n");
  std::string b = dir.write("b.nas", "let w = 2;\n\nmodule block(x: tensor) { return x; }\n");
  std::string calls = dir.write("calls.nas",
                                "import \"a.nas\";\n"
                                "import \"b.nas\";\n"
                                "network n(x: tensor[1, 8, 8]) {\n"
                                "  return block(x);\n"
                                "}\n");
  Diagnostic d = one_error(compile_with(calls, "", {}, true), 4, 10,
                           {"`block` is ambiguous: a module of that name is imported from a.nas "
                            "and b.nas; import only one of them, or define `block` in this file"});
  REQUIRE(d.notes.size() == 2);
  CHECK(d.notes[0].first.file->path == a);
  CHECK(d.notes[0].first.line == 2);
  CHECK(d.notes[0].first.col == 8);
  CHECK(d.notes[1].first.file->path == b);
  CHECK(d.notes[1].first.line == 3);
  CHECK(d.notes[1].first.col == 8);

  std::string reads = dir.write("reads.nas",
                                "import \"a.nas\";\n"
                                "import \"b.nas\";\n"
                                "network n(x: tensor[1, 8, 8], c: int = w) {\n"
                                "  return x;\n"
                                "}\n");
  d = one_error(compile_with(reads, "", {}, true), 3, 40,
                {"`w` is ambiguous: a constant of that name is imported from a.nas and b.nas"});
  REQUIRE(d.notes.size() == 2);
  CHECK(d.notes[0].first.line == 1);
  CHECK(d.notes[1].first.line == 1);

  // Unused, or defined in the importing file itself: no ambiguity.
  std::string unused = dir.write("unused.nas",
                                 "import \"a.nas\";\nimport \"b.nas\";\n"
                                 "network n(x: tensor[1, 8, 8]) { return x; }\n");
  Outcome r = compile_with(unused, "", {}, true);
  INFO(r.diags.render());
  CHECK(r.ok);
  std::string own = dir.write("own.nas",
                              "import \"a.nas\";\nimport \"b.nas\";\n"
                              "let w = 3;\n"
                              "module block(x: tensor) { return sigmoid(x); }\n"
                              "network n(x: tensor[1, 8, 8]) { return block(x) * w; }\n");
  Graph g = compile_file_ok(own);
  CHECK(count_op(g, "sigmoid") == 1);
  CHECK(count_op(g, "relu") == 0);
}

TEST_CASE("imports are not transitive: the error names the file that defines the module",
          "[diagnostics][imports][scope]") {
  TempDir dir;
  std::string base = dir.write("base.nas", "\nmodule base(x: tensor) { return relu(x); }\n");
  dir.write("mid.nas", "import \"base.nas\";\nmodule mid(x: tensor) { return base(x); }\n");
  std::string main = dir.write("main.nas",
                               "import \"mid.nas\";\n"
                               "network n(x: tensor[1, 8, 8]) {\n"
                               "  return base(mid(x));\n"
                               "}\n");
  Diagnostic d = one_error(compile_with(main, "", {}, true), 3, 10,
                           {"unknown module or function `base`; `base` is defined in base.nas, "
                            "which this file does not import (imports are not transitive)"});
  REQUIRE(d.notes.size() == 1);
  CHECK(d.notes[0].first.file->path == base);
  CHECK(d.notes[0].first.line == 2);
  CHECK(d.notes[0].first.col == 8);
}

// ---- habits from PyTorch ------------------------------------------------------------------------

TEST_CASE("PyTorch keyword names get their .nas counterpart", "[diagnostics][names][pytorch]") {
  one_error(std::string(kNet) + "  return conv(x, 4, kernel_size=3);\n}\n", 2, 21,
            {"conv has no attribute `kernel_size` (its attributes: out, kernel, stride, pad, "
             "dilation, groups, bias); did you mean `kernel`? (`kernel_size` is PyTorch's name "
             "for it)"});
  one_error(std::string(kNet) + "  return max_pool(x, 3, padding=1);\n}\n", 2, 25,
            {"did you mean `pad`? (`padding` is PyTorch's name for it)"});
  one_error(std::string(kNet) + "  return conv(x, kernel=3, out_channels=8);\n}\n", 2, 28,
            {"did you mean `out`?"});
  one_error(std::string(kNet) + "  return leaky_relu(x, negative_slope=0.2);\n}\n", 2, 24,
            {"did you mean `slope`?"});
  one_error(std::string(kNet) + "  return concat([x, x], dim=0);\n}\n", 2, 25,
            {"did you mean `axis`?"});
  one_error(std::string(kNet) + "  return conv(x, 8, 3, in_channels=3);\n}\n", 2, 24,
            {"conv has no attribute `in_channels`",
             "the input channels come from the input tensor's shape, so leave `in_channels` out"});
  one_error(std::string(kNet) + "  return relu(x, inplace=true);\n}\n", 2, 18,
            {"ops never work in place here, so leave `inplace` out"});
  // Module parameters too: the stdlib blocks call their output channels c_out.
  one_error("import \"ops.nas\";\n" + std::string(kNet) +
                "  return relu_conv_bn(x, 8, kernel_size=3);\n}\n",
            3, 29,
            {"module `relu_conv_bn` has no parameter `kernel_size`", "did you mean `kernel`?"});
  one_error("import \"ops.nas\";\n" + std::string(kNet) +
                "  return sep_conv(x, out_channels=8, kernel=3);\n}\n",
            3, 22, {"did you mean `c_out`? (`out_channels` is PyTorch's name for it)"});
  // Module parameters get the edit distance suggestion as well.
  one_error("module m(x: tensor, width: int) { return x; }\n" + std::string(kNet) +
                "  return m(x, widht=3);\n}\n",
            3, 15,
            {"module `m` has no parameter `widht` (its parameters: x, width); did you mean "
             "`width`?"});
  // No counterpart on this op: no alias (linear has no `pad`), and the plain suggestion.
  Diagnostic d = one_error(std::string(kNet) + "  return linear(flatten(x), 4, padding=1);\n}\n", 2,
                           32, {"linear has no attribute `padding`"});
  CHECK_THAT(d.message, !Catch::Matchers::Contains("PyTorch"));
}

TEST_CASE("True, False and None name what .nas writes", "[diagnostics][names][pytorch]") {
  one_error(std::string(kNet) + "  return conv(x, 8, 3, bias=True);\n}\n", 2, 29,
            {"unknown name `True`; did you mean `true`?"});
  one_error(std::string(kNet) + "  let b = False;\n  return x;\n}\n", 2, 11,
            {"unknown name `False`; did you mean `false`?"});
  one_error(std::string(kNet) + "  return dropout(x, p=None);\n}\n", 2, 23,
            {"unknown name `None`; .nas has no `None` (no null value): leave an optional "
             "argument out to get its default"});
  // A variable of that name is just a variable.
  Outcome r = compile(std::string(kNet) + "  let True = 1;\n  assert True == 1;\n  return x;\n}\n");
  INFO(r.diags.render());
  CHECK(r.ok);
}

TEST_CASE("`k // 2` gets a note: `//` starts a comment, floor division is `/`",
          "[diagnostics][syntax][pytorch]") {
  auto note_of = [](const Outcome& r, int line, int col, const std::string& text) {
    INFO(r.diags.render());
    REQUIRE(r.errors().size() == 1);
    REQUIRE(r.errors()[0]->notes.size() == 1);
    const auto& [loc, message] = r.errors()[0]->notes[0];
    CHECK(loc.line == line);
    CHECK(loc.col == col);
    CHECK_THAT(message, Catch::Matchers::Contains(text));
  };
  const std::string net = "network n(x: tensor[3, 8, 8], k: int = 3) {\n";
  // The `;` is commented out: the error is at the end of `k`, the note at the `//`.
  Outcome r = compile(net + "  let p = k // 2;\n  return conv(x, 8, k, pad=p);\n}\n");
  one_error(r, 2, 12, {"syntax error: expected ';' before 'return'"});
  note_of(r, 2, 13,
          "`//` starts a comment in .nas; for integer (floor) division write `k / 2` (`/` on two "
          "ints)");
  // Inside a call: the error comes on the next line.
  r = compile(net + "  return conv(x, 8, k, pad=k // 2);\n}\n");
  one_error(r, 3, 1, {"unexpected '}'; expected ')'"});
  note_of(r, 2, 30, "write `k / 2`");
  // After a parenthesis there is no simple left operand to quote.
  r = compile(net + "  let p = (k + 1)  // 2;\n  return x;\n}\n");
  one_error(r, 2, 18, {"expected ';' before 'return'"});
  note_of(r, 2, 20, "write `a / b`");
  // A trailing comment after a missing `;` is words, not code: no note.
  r = compile(net + "  return x // done\n}\n");
  Diagnostic d = one_error(r, 2, 11, {"expected ';' before '}'"});
  CHECK(d.notes.empty());
}

// ---- limits ---------------------------------------------------------------------------------

TEST_CASE("a loop over range(10^9) is refused, not run", "[diagnostics][limits]") {
  Outcome r =
      compile(std::string(kNet) + "  for i in range(1000000000) { let z = i; }\n  return x;\n}\n");
  one_error(r, 2, 12, {"range(1000000000) would have 1000000000 elements; the limit is 1000000"});
  CHECK(r.seconds < 5);
  one_error(std::string(kNet) + "  let r = range(0, 9223372036854775807, 1);\n  return x;\n}\n", 2,
            11, {"the limit is 1000000"});
}

TEST_CASE("nested loops stop at the step limit", "[diagnostics][limits]") {
  CompileOptions opt;
  opt.elaborate.max_steps = 2'000'000;  // the default (20M) works the same, ten times slower
  Outcome r = compile(std::string(kNet) +
                          "  for i in range(1000000) {\n"
                          "    for j in range(1000000) { let z = 1; }\n"
                          "  }\n"
                          "  return x;\n"
                          "}\n",
                      opt);
  one_error(r, 3, 14, {"elaboration took more than 2000000 steps", "unbounded?"});
  CHECK(r.seconds < 20);
}

TEST_CASE("work on big values counts toward the step limit", "[diagnostics][limits]") {
  CompileOptions opt;
  opt.elaborate.max_steps = 2'000'000;
  // Each statement looks cheap but copies or scans a million elements.
  for (const char* body :
       {"let b = big[1:];", "let b = big[1:] + [1];", "let b = 999999 in big;",
        "let b = big == big[0:1000000];", "let b = max(big);", "let b = sum(big);"}) {
    Outcome r = compile(std::string(kNet) + "  let big = range(1000000);\n" +
                            "  for i in range(1000) { " + body + " }\n  return x;\n}\n",
                        opt);
    INFO(body);
    REQUIRE(r.errors().size() == 1);
    CHECK(r.errors()[0]->loc.line == 3);
    CHECK_THAT(r.errors()[0]->message, Catch::Matchers::Contains("steps"));
    CHECK(r.seconds < 20);
  }
}

TEST_CASE("unbounded recursion is refused", "[diagnostics][limits]") {
  one_error(
      "module r(x: tensor, d: int) {\n"
      "  let a = r(x, d + 1);\n"
      "  return a;\n"
      "}\n" +
          std::string(kNet) + "  return r(x, 0);\n}\n",
      2, 11, {"module calls nested deeper than 128 (recursion without a base case?)", "r -> r"});
  // Two calls per level: exponential, but the step limit ends it within seconds.
  CompileOptions opt;
  opt.elaborate.max_steps = 1'000'000;
  Outcome r = compile(
      "module r(x: tensor, d: int) {\n"
      "  if d > 60 { return x; }\n"
      "  let a = r(x, d + 1);\n"
      "  return r(a, d + 1);\n"
      "}\n" +
          std::string(kNet) + "  return r(x, 0);\n}\n",
      opt);
  INFO(r.diags.render());
  REQUIRE(r.errors().size() == 1);
  CHECK_THAT(r.errors()[0]->message, Catch::Matchers::Contains("steps"));
  CHECK(r.seconds < 20);
}

TEST_CASE("deep nesting and huge expressions are refused before the parser recurses",
          "[diagnostics][limits]") {
  const std::string head = "network n(x: tensor[1, 8, 8]) { let a = ";  // 40 characters
  // 100000 '(': inside the network's `{`, the 256th is one level too many.
  one_error(head + std::string(100000, '(') + "1" + std::string(100000, ')') + "; return x; }\n", 1,
            41 + 255, {"nesting deeper than 256 levels of brackets"});
  // A million-term sum: refused at the 10000th '+' (the call-like `n(` of the network
  // header counts as the statement's first operator).
  std::string sum = "1";
  for (int i = 0; i < 999999; ++i) sum += "+1";
  one_error(head + sum + "; return x; }\n", 1, 42 + 2 * 9999,
            {"statement has more than 10000 operators"});
  // Prefix and postfix chains nest as deeply, without any bracket depth.
  std::string nots;
  for (int i = 0; i < 1000000; ++i) nots += "not ";
  one_error(head + nots + "true; return x; }\n", 1, 41 + 4 * 9999, {"more than 10000 operators"});
  std::string idx;
  for (int i = 0; i < 1000000; ++i) idx += "[0]";
  one_error(head + "x" + idx + "; return x; }\n", 1, 42 + 3 * 9999, {"more than 10000 operators"});
  // Nesting and length under the limits are fine.
  std::string ok = "1";
  for (int i = 0; i < 9000; ++i) ok += "+1";
  Outcome r = compile(head + ok + "; assert a == 9001; let b = " + std::string(200, '(') + "2" +
                      std::string(200, ')') + "; return x; }\n");
  INFO(r.diags.render());
  CHECK(r.ok);
}

TEST_CASE("runaway values are refused: nesting, strings, sharing", "[diagnostics][limits]") {
  one_error(
      std::string(kNet) + "  let a = [];\n  for i in range(1000) { a = [a]; }\n  return x;\n}\n", 3,
      30, {"lists nested more than 100 levels deep"});
  one_error(std::string(kNet) +
                "  let a = [];\n  for i in range(1000) { a = append([], a); }\n  return x;\n}\n",
            3, 30, {"lists nested more than 100 levels deep"});
  one_error(
      std::string(kNet) + "  let s = \"x\";\n  for i in range(64) { s = s + s; }\n  return x;\n}\n",
      3, 30, {"string concatenation would have 1048576 characters; the limit is 1000000"});
  // [a, a, ...] nested 90 deep shares its sublists: cheap to build, 18^90 to walk.
  Outcome r = compile(
      std::string(kNet) +
      "  let a = [1];\n"
      "  for i in range(90) { a = [a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a]; }\n"
      "  let b = [1];\n"
      "  for i in range(90) { b = [b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b]; }\n"
      "  assert len(str(a)) < 10000, \"long\";\n"
      "  assert a == b, \"differ\";\n"
      "  return x;\n"
      "}\n");
  // str() gives the whole text or an error, never an abbreviation.
  INFO(r.diags.render());
  REQUIRE(r.errors().size() == 2);
  nth_error(r, 0, 6, 14, {"str() of this list would be longer than 1000000 characters"});
  nth_error(r, 1, 7, 12, {"steps"});
  CHECK(r.seconds < 20);
  one_error(std::string(kNet) + "  let e = watts_strogatz(4096, 1000, 0.5, 1);\n  return x;\n}\n",
            2, 11,
            {"watts_strogatz(4096, 1000, ...) would have 2048000 edges; the limit is 1000000"});
}

TEST_CASE("watts_strogatz on a big graph finishes", "[diagnostics][limits]") {
  Outcome r = compile(std::string(kNet) +
                      "  let e = watts_strogatz(4096, 200, 0.5, 1);\n"
                      "  assert len(e) == 409600, len(e);\n"
                      "  return x;\n"
                      "}\n");
  INFO(r.diags.render());
  CHECK(r.ok);
  CHECK(r.seconds < 20);
}

// ---- files -----------------------------------------------------------------------------------

TEST_CASE("an empty file has no network", "[diagnostics][files]") {
  for (const char* text : {"", "\n\n", "// only a comment\n", "  \t "}) {
    Outcome r = compile(text);
    INFO("text: " << text);
    one_error(r, 1, 1, {"no `network` in this file"});
  }
  one_error("module m(x: tensor) { return x; }\n", 1, 1, {"no `network` in this file"});
}

TEST_CASE("NUL bytes and invalid UTF-8 are refused as binary", "[diagnostics][files]") {
  one_error(std::string("network n(x: tensor[1, 8, 8]) {\n  return x;\0\n}\n", 46), 2, 12,
            {"not a .nas text file: NUL byte (is this a binary file?)"});
  one_error("// caf\xc3\xa9\nlet \xe2\x82 = 1;\n", 2, 5, {"invalid UTF-8 byte 0xE2"});
  // Sequences that look like UTF-8 but are not (ANTLR's decoder throws on them): overlong
  // forms, surrogates, code points above U+10FFFF, and lead bytes that never occur.
  one_error("\xc0\x80", 1, 1, {"invalid UTF-8 byte 0xC0"});
  one_error("let s = \"\xe0\x80\xaf\";", 1, 10, {"invalid UTF-8 byte 0xE0"});
  one_error("// \xed\xa0\x80 surrogate\n", 1, 4, {"invalid UTF-8 byte 0xED"});
  one_error("// \xf4\x90\x80\x80 past U+10FFFF\n", 1, 4, {"invalid UTF-8 byte 0xF4"});
  one_error("let s = \"\xf5\x80\x80\x80\";", 1, 10, {"invalid UTF-8 byte 0xF5"});
  // The largest code point and the last ones before and after the surrogates are fine.
  Outcome fine = compile("// \xf4\x8f\xbf\xbf \xed\x9f\xbf \xee\x80\x80\n" + std::string(kNet) +
                         "  return x;\n}\n");
  INFO(fine.diags.render());
  CHECK(fine.ok);
  std::mt19937 rng(7);
  std::string bytes;
  for (int i = 0; i < 4096; ++i) bytes += static_cast<char>(rng() & 0xFF);
  Outcome r = compile(bytes);
  INFO(r.diags.render());
  REQUIRE(r.errors().size() == 1);
  CHECK_THAT(r.errors()[0]->message, Catch::Matchers::Contains("not a .nas text file"));
}

TEST_CASE("a file over the size limit is refused unread", "[diagnostics][files]") {
  std::string huge(17u << 20, ' ');
  Outcome r = compile(huge);
  one_error(r, 1, 1, {"source file is larger than the 16 MiB limit (17825792 bytes)"});
  CHECK(r.seconds < 5);
}

TEST_CASE("a 10 MB file of garbage text gives one clear error quickly",
          "[diagnostics][files][big]") {
  std::mt19937 rng(1);
  const std::string chars = "abcdefghij klmnopqrstuvwxyz{}()[];:,.=+-*/<>!?\"# \n\t0123456789";
  std::string text;
  text.reserve(10u << 20);
  while (text.size() < (10u << 20)) text += chars[rng() % chars.size()];
  Outcome r = compile(text);
  INFO(r.diags.render().substr(0, 2000));
  REQUIRE_FALSE(r.threw);
  REQUIRE_FALSE(r.ok);
  REQUIRE(r.errors().size() >= 1);
  CHECK(r.errors()[0]->loc.line >= 1);
  CHECK(r.errors()[0]->loc.col >= 1);
  CHECK(r.seconds < 60);

  // Words without brackets: the parser proper sees them.
  std::string words;
  while (words.size() < (10u << 20)) words += "lorem ipsum dolor sit amet\n";
  Outcome w = compile(words);
  nth_error(w, 0, 1, 1, {"unexpected 'lorem'; expected 'import', 'let', 'module' or 'network'"});
  CHECK(w.seconds < 60);
}

TEST_CASE("a 10 MB file of valid modules compiles", "[diagnostics][files][big]") {
  std::string text;
  text.reserve((10u << 20) + 1000);
  for (int i = 0; text.size() < (10u << 20); ++i)
    text += "module blk_" + std::to_string(i) +
            "(x: tensor, c: int = 4) {\n"
            "  let h = conv(x, c, kernel=3, pad=1);\n"
            "  h = batchnorm(h);\n"
            "  return relu(h);\n"
            "}\n";
  text += "network n(x: tensor[3, 8, 8]) { return blk_7(blk_0(x)); }\n";
  Outcome r = compile(text);
  INFO(r.diags.render());
  CHECK(r.ok);
  CHECK(r.all().empty());
  CHECK(r.seconds < 120);
}

TEST_CASE("a 2 MB program on one line, with non-ASCII text, compiles in linear time",
          "[diagnostics][files][big]") {
  // Every AST node's column is converted from code points to bytes on this line.
  std::string text = "let greeting = \"héllo\";";
  for (int i = 0; text.size() < (2u << 20); ++i)
    text += " module m" + std::to_string(i) + "(x: tensor) { return relu(x); }";
  const size_t error_at =
      text.size() + 1 + std::string(" network n(x: tensor[1, 8, 8]) { return ").size();
  Outcome r = compile(text + " network n(x: tensor[1, 8, 8]) { return m7(zz); }\n");
  one_error(r, 1, static_cast<int>(error_at) + 3, {"unknown name `zz`"});
  CHECK(r.seconds < 30);
}

// ---- --set ------------------------------------------------------------------------------------

TEST_CASE("network parameter overrides", "[diagnostics][overrides]") {
  const std::string net =
      "network n(x: tensor[1, 8, 8], width: int = 4) {\n  return conv(x, width, 1);\n}\n";
  CompileOptions opt;
  opt.elaborate.overrides = {{"widht", "8"}};
  one_error(compile(net, opt), 1, 9,
            {"--set widht=8: network `n` has no parameter `widht` (its parameters: width)"});
  opt.elaborate.overrides = {{"x", "8"}};
  one_error(compile(net, opt), 1, 9, {"network `n` has no parameter `x`"});
  opt.elaborate.overrides = {{"width", "abc"}};
  one_error(compile(net, opt), 1, 31,
            {"--set width=abc: network parameter `width` is int, got string \"abc\""});
  opt.elaborate.overrides = {{"width", "2.5"}};
  one_error(compile(net, opt), 1, 31, {"is int, got float 2.5"});
  opt.elaborate.overrides = {{"width", std::string(100000, '[')}};
  one_error(compile(net, opt), 1, 31, {"lists nested more than 100 levels deep"});
  opt.elaborate.overrides = {{"width", "0"}};
  one_error(compile(net, opt), 2, 10, {"conv attribute `out` must be >= 1, got 0"});
}

// ---- robustness -------------------------------------------------------------------------------

// Truncations and byte mutations of a valid program: whatever the result, an error
// is located and no exception (an internal error) escapes.
TEST_CASE("mutated programs never escape as exceptions", "[diagnostics][robust]") {
  const std::string good =
      "import \"darts_ops.nas\";\n"
      "let C = 4;\n"
      "module cell(x: tensor, c: int, ops: list = [\"a\", \"b\"]) {\n"
      "  let h = choice \"op\" { for o in ops { (o): conv(x, c, 3, pad=1) } };\n"
      "  let j = join(k=2, key=\"j\") { e0: h, e1: x * 0.5, e2: relu(x) };\n"
      "  assert channels(j) == c, \"channels \" + str(channels(j));\n"
      "  return [h, j][-1] + concat([h, j], axis=0)[0:1][0] * 0 + h;\n"
      "}\n"
      "network n(x: tensor[4, 8, 8], w: int = C) {\n"
      "  let hs = [cell(x, w) for i in range(2) if i >= 0];\n"
      "  return linear(global_avg_pool(sum(hs)), w > 2 ? 10 : 5);\n"
      "}\n";
  Outcome base = compile(good);
  INFO(base.diags.render());
  CHECK_FALSE(base.threw);
  std::mt19937 rng(42);
  const std::string alphabet = "(){}[];:,.=+-*/<>!?\"x1 \n";
  int failures = 0;
  for (size_t cut = 0; cut < good.size(); cut += 3) {
    Outcome r = compile(good.substr(0, cut));
    if (r.threw) ++failures;
    for (const Diagnostic* d : r.errors())
      if (d->loc.file) CHECK(d->loc.line >= 1);
  }
  for (int i = 0; i < 300; ++i) {
    std::string text = good;
    for (int k = 0; k < 3; ++k) text[rng() % text.size()] = alphabet[rng() % alphabet.size()];
    Outcome r = compile(text);
    INFO(text << "\n" << r.what);
    if (r.threw) ++failures;
    CHECK(!r.threw);
    CHECK((r.ok || r.diags.has_errors()));
  }
  CHECK(failures == 0);
}

// ---- instance paths of argument errors --------------------------------------------------------

TEST_CASE("a wrong argument is the caller's error, a bad default is the callee's",
          "[diagnostics][args][paths]") {
  // The declared shape of a given argument: the caret is on the argument in `b`, so the
  // path is b's, not m's.
  Diagnostic d = one_error(
      "module m(x: tensor[4, 8, 8]) { return x; }\n"
      "module b(x: tensor) { return m(x); }\n" +
          std::string(kNet) + "  return b(x);\n}\n",
      2, 32, {"argument `x` of `m` must have shape [4,8,8], got [3,8,8] from `x`"});
  CHECK(d.instance_path == "n/b");
  d = one_error(
      "module m(x: tensor, c: int) { return x; }\n"
      "module b(x: tensor) { return m(x, 2.5); }\n" +
          std::string(kNet) + "  return b(x);\n}\n",
      2, 35, {"argument `c` of `m` must be int, got float 2.5"});
  CHECK(d.instance_path == "n/b");
  // A default is evaluated and checked in the callee, where its caret points.
  d = one_error("module m(x: tensor, c: int = \"s\") { return x; }\n" + std::string(kNet) +
                    "  return m(x);\n}\n",
                1, 30, {"argument `c` of `m` must be int, got string \"s\""});
  CHECK(d.instance_path == "n/m");
  // So is a declared shape's dimension: it is part of the module's declaration.
  d = one_error(
      "module m(x: tensor[zz, 8, 8]) { return x; }\n" + std::string(kNet) + "  return m(x);\n}\n",
      1, 20, {"unknown name `zz`"});
  CHECK(d.instance_path == "n/m");
}

// ---- a failed network parameter is reported once ----------------------------------------------

TEST_CASE("a failed parameter used in an input shape is not reported again",
          "[diagnostics][overrides][cascade]") {
  const std::string net =
      "network n(x: tensor[c, 8, 8], c: int = 3) {\n  return conv(x, 4, 1);\n}\n";
  CompileOptions opt;
  opt.elaborate.overrides = {{"c", "abc"}};
  Diagnostic d = one_error(compile(net, opt), 1, 31,
                           {"--set c=abc: network parameter `c` is int, got string \"abc\""});
  CHECK_THAT(d.message, !Catch::Matchers::Contains("got error"));
  one_error("network n(x: tensor[c, 8, 8], c: int = zz) {\n  return x;\n}\n", 1, 40,
            {"unknown name `zz`"});
  // A bad dimension of its own is still reported.
  one_error("network n(x: tensor[c, 8, 8], c: int = 0) {\n  return x;\n}\n", 1, 21,
            {"input shape dimensions must be ints between 1 and 16777216, got 0"});
}

// ---- "did you mean"
// ------------------------------------------------------------------------------

TEST_CASE("names: edit distance and the shared suggestion helper", "[diagnostics][names]") {
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("same", "same") == 0);
  const std::vector<std::string> attrs = {"out", "kernel", "stride", "pad"};
  CHECK(did_you_mean("kernal", attrs) == "; did you mean `kernel`?");
  CHECK(closest_name("strid", attrs) == "stride");
  CHECK(did_you_mean("momentum", attrs).empty());  // nothing close
  CHECK(did_you_mean("pad", attrs).empty());       // the name itself is never suggested
  CHECK(did_you_mean("x", {}).empty());
}

TEST_CASE("an unknown op attribute comes with a suggestion", "[diagnostics][names][args]") {
  one_error(std::string(kNet) + "  return conv(x, 4, kernal=3);\n}\n", 2, 21,
            {"conv has no attribute `kernal` (its attributes: out, kernel, stride, pad, dilation, "
             "groups, bias); did you mean `kernel`?"});
  Diagnostic d = one_error(std::string(kNet) + "  return conv(x, 4, 3, momentum=3);\n}\n", 2, 24,
                           {"conv has no attribute `momentum`"});
  CHECK_THAT(d.message, !Catch::Matchers::Contains("did you mean"));
}

// ---- str()
// -----------------------------------------------------------------------------------------

TEST_CASE("str() gives the whole text, only messages abbreviate", "[diagnostics][builtins]") {
  // Lists over 16 elements used to be cut to "[0, ..., 15, ... (17 elements)]", so two
  // lists with the same first 16 elements and length gave the same text.
  Outcome r =
      compile(std::string(kNet) +
              "  assert str(range(17)) != str(range(16) + [99]), \"collide\";\n"
              "  assert len(str(range(20))) == 70, str(range(20));\n"
              "  assert str([\"a\", [1.5, true]]) == \"[\\\"a\\\", [1.5, true]]\", \"nested\";\n"
              "  return x;\n}\n");
  INFO(r.diags.render());
  CHECK(r.ok);
  // Past the string limit it is an error, never a shorter text.
  one_error(std::string(kNet) + "  let s = str(range(200000));\n  return x;\n}\n", 2, 11,
            {"str() of this list would be longer than 1000000 characters, the limit for strings"});
  // Messages still abbreviate long lists.
  one_error(std::string(kNet) + "  let r = range(20) + 1;\n  return x;\n}\n", 2, 21,
            {"list [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, ... (20 elements)]"});
}

// ---- Graph::params is JSON ---------------------------------------------------------------------

TEST_CASE("network parameters are recorded as JSON text, whole", "[diagnostics][overrides]") {
  const std::string text =
      "network n(x: tensor[1, 8, 8], i: int = 3, f: float = 0.1, g: float = 2, b: bool = true,\n"
      "          s: string = \"a\\\"b\\\\c\", l: list = range(20), m: list = [[1, \"x\"], [], "
      "1e300]) "
      "{\n"
      "  return x;\n"
      "}\n";
  auto params_of = [&](const CompileOptions& opt) {
    Diagnostics diags;
    Compilation c = compile_text("t.nas", text, opt, diags);
    INFO(diags.render());
    REQUIRE(c.supernet);
    return c.supernet->params;
  };
  auto params = params_of({});
  using P = std::pair<std::string, std::string>;
  CHECK(params ==
        std::vector<P>{
            {"i", "3"},
            {"f", "0.1"},
            {"g", "2.0"},
            {"b", "true"},
            {"s", "\"a\\\"b\\\\c\""},
            {"l", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]"},
            {"m", "[[1, \"x\"], [], 1e+300]"},
        });
  for (const auto& [name, value] : params) {
    INFO(name << "=" << value);
    CHECK(nlohmann::json::accept(value));
  }
  CHECK(nlohmann::json::parse(params[4].second) == "a\"b\\c");
  CHECK(nlohmann::json::parse(params[5].second).size() == 20);
  // --set text is unchecked: control characters are escaped, invalid UTF-8 replaced.
  CompileOptions opt;
  opt.elaborate.overrides = {{"s", "tab\there\xff"}, {"f", "0.30000000000000004"}};
  params = params_of(opt);
  CHECK(params[4].second == "\"tab\\there\\ufffd\"");
  CHECK(nlohmann::json::parse(params[4].second) == "tab\there\xEF\xBF\xBD");
  CHECK(params[1].second == "0.30000000000000004");  // the exact double, not 12 digits
  // The IR header prints them, and the IR parser reads them back.
  Diagnostics diags;
  Compilation c =
      compile_text("t.nas",
                   "network n(x: tensor[1, 8, 8], l: list = [[1, \"x, y\"], []], p: float = 0.5) "
                   "{ return x; }\n",
                   {}, diags);
  REQUIRE(c.supernet);
  std::string ir = print_graph(*c.supernet);
  CHECK(ir.rfind("network n(l=[[1, \"x, y\"], []], p=0.5) {\n", 0) == 0);
  std::optional<Graph> back = parse_ir("t.ir", ir, diags);
  INFO(diags.render());
  REQUIRE(back);
  CHECK(back->params == c.supernet->params);
  // A value too big to record is an error, not a cut text.
  one_error("network n(x: tensor[1, 8, 8], l: list = range(200000)) { return x; }\n", 1, 31,
            {"network parameter `l` is too big to record: its value is over 1000000 characters"});
}

// ---- candidate names and keys
// --------------------------------------------------------------------

TEST_CASE("candidate names and choice keys must fit in paths, the IR and DOT",
          "[diagnostics][choices]") {
  one_error(std::string(kNet) + "  return choice \"k\" { \"a b\": x };\n}\n", 2, 23,
            {"candidate name \"a b\" contains a space; candidate names must not contain "
             "whitespace, control characters, `/`, `@`, `#`, `\"` or `%`"});
  one_error(std::string(kNet) + "  return choice \"k\" { (\"a\" + \"/b\"): x };\n}\n", 2, 28,
            {"candidate name \"a/b\" contains `/`"});
  one_error(std::string(kNet) + "  return choice \"k\" { (\"a\\n\"): x };\n}\n", 2, 24,
            {"candidate name \"a\\n\" contains whitespace"});
  one_error(std::string(kNet) + "  return choice \"k\" { \"%1\": x };\n}\n", 2, 23,
            {"contains `%`"});
  one_error(std::string(kNet) + "  return choice \"k\" { \"a@b\": x };\n}\n", 2, 23,
            {"contains `@`"});
  one_error(std::string(kNet) + "  return choice \"k\" { \"a#b\": x };\n}\n", 2, 23,
            {"contains `#`"});
  one_error(std::string(kNet) + "  return choice \"k\" { \"a\\\"b\": x };\n}\n", 2, 23,
            {"contains `\"`"});
  one_error(std::string(kNet) + "  return choice \"k\" { (\"\"): x };\n}\n", 2, 24,
            {"a candidate name must not be empty"});
  one_error(std::string(kNet) + "  return choice \"a b\" { p: x };\n}\n", 2, 17,
            {"choice key \"a b\" contains a space; keys must not contain whitespace, control "
             "characters, `@`, `#`, `\"` or `%`"});
  one_error(std::string(kNet) + "  return join(k=1, key=\"e\\t0\") { p: x, q: x };\n}\n", 2, 20,
            {"join key \"e\\t0\" contains whitespace"});
  one_error(std::string(kNet) + "  return choice(key=\"n#1\") { p: x };\n}\n", 2, 17,
            {"contains `#`"});
  // '/' is fine in a key: computed keys group related choices ("normal/n2_e0").
  Outcome r =
      compile(std::string(kNet) + "  return choice \"normal/n2_e0\" { p: x, q: relu(x) };\n}\n");
  INFO(r.diags.render());
  CHECK(r.ok);
}

TEST_CASE("a let's value cannot refer to the name it declares", "[diagnostics][names]") {
  // Found by the fuzzer: this once compiled, silently, to a graph without an output.
  one_error("network n(x: tensor[2, 4, 4]) {\n  let z = relu(z);\n  return z;\n}\n", 2, 16,
            {"unknown name `z`"});
  // With an outer `z`, the value reads the outer one (a new scope may shadow it).
  Outcome r = compile(
      "network n(x: tensor[2, 4, 4]) {\n  let z = x;\n  if true {\n    let z = relu(z);\n"
      "    return z;\n  }\n  return z;\n}\n");
  INFO(r.diags.render());
  CHECK(r.ok);
}

TEST_CASE("overflow in abs() and out-of-range float literals are named", "[diagnostics][values]") {
  one_error("let a = abs(-9223372036854775807 - 1);\nnetwork n(x: tensor[2]) { return x; }\n", 1, 9,
            {"integer overflow in abs(-9223372036854775808)"});
  one_error("let a = 1e400;\nnetwork n(x: tensor[2]) { return x; }\n", 1, 9,
            {"number literal 1e400 is out of range"});
}

}  // namespace nas
