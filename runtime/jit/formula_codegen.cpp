#include "runtime/jit/formula_codegen.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "support/errors.h"

namespace nas {

enum class FormulaOp {
  Number,
  X,
  A,
  Neg,
  Add,
  Sub,
  Mul,
  Div,
  Less,
  LessEq,
  Greater,
  GreaterEq,
  Equal,
  And,
  Select,
  Max,
  Min,
  Relu6,
  Sigmoid,
};

struct FormulaNode {
  FormulaOp op = FormulaOp::Number;
  double number = 0;
  std::vector<std::unique_ptr<FormulaNode>> args;
};

namespace {

using NodePtr = std::unique_ptr<FormulaNode>;

NodePtr node(FormulaOp op, std::vector<NodePtr> args = {}) {
  auto n = std::make_unique<FormulaNode>();
  n->op = op;
  n->args = std::move(args);
  return n;
}

std::vector<NodePtr> two(NodePtr a, NodePtr b) {
  std::vector<NodePtr> v;
  v.push_back(std::move(a));
  v.push_back(std::move(b));
  return v;
}

// Recursive descent, lowest precedence first: ?: then && then comparisons, + -, * /, unary.
class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}

  NodePtr parse() {
    NodePtr n = ternary();
    skip_space();
    if (pos_ != text_.size()) fail("unexpected `" + text_.substr(pos_, 1) + "`");
    return n;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    internal_error(
        __FILE__, __LINE__,
        "elementwise formula `" + text_ + "` at column " + std::to_string(pos_ + 1) + ": " + what);
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool accept(const char* token) {
    skip_space();
    const std::string t(token);
    if (text_.compare(pos_, t.size(), t) != 0) return false;
    // `<` must not take the first half of `<=`.
    if (t.size() == 1 && (t == "<" || t == ">" || t == "=") && pos_ + 1 < text_.size() &&
        text_[pos_ + 1] == '=')
      return false;
    pos_ += t.size();
    return true;
  }
  void expect(const char* token) {
    if (!accept(token)) fail(std::string("expected `") + token + "`");
  }

  NodePtr ternary() {
    NodePtr condition = conjunction();
    if (!accept("?")) return condition;
    NodePtr yes = ternary();
    expect(":");
    NodePtr no = ternary();
    std::vector<NodePtr> args;
    args.push_back(std::move(condition));
    args.push_back(std::move(yes));
    args.push_back(std::move(no));
    return node(FormulaOp::Select, std::move(args));
  }
  NodePtr conjunction() {
    NodePtr n = comparison();
    while (accept("&&")) n = node(FormulaOp::And, two(std::move(n), comparison()));
    return n;
  }
  NodePtr comparison() {
    NodePtr n = sum();
    static const std::pair<const char*, FormulaOp> ops[] = {{"<=", FormulaOp::LessEq},
                                                            {">=", FormulaOp::GreaterEq},
                                                            {"==", FormulaOp::Equal},
                                                            {"<", FormulaOp::Less},
                                                            {">", FormulaOp::Greater}};
    for (const auto& [token, op] : ops)
      if (accept(token)) return node(op, two(std::move(n), sum()));
    return n;
  }
  NodePtr sum() {
    NodePtr n = product();
    for (;;) {
      if (accept("+"))
        n = node(FormulaOp::Add, two(std::move(n), product()));
      else if (accept("-"))
        n = node(FormulaOp::Sub, two(std::move(n), product()));
      else
        return n;
    }
  }
  NodePtr product() {
    NodePtr n = unary();
    for (;;) {
      if (accept("*"))
        n = node(FormulaOp::Mul, two(std::move(n), unary()));
      else if (accept("/"))
        n = node(FormulaOp::Div, two(std::move(n), unary()));
      else
        return n;
    }
  }
  NodePtr unary() {
    if (accept("-")) {
      std::vector<NodePtr> args;
      args.push_back(unary());
      return node(FormulaOp::Neg, std::move(args));
    }
    return primary();
  }
  NodePtr primary() {
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end");
    const char c = text_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      const char* begin = text_.c_str() + pos_;
      char* end = nullptr;
      NodePtr n = node(FormulaOp::Number);
      n->number = std::strtod(begin, &end);
      pos_ += static_cast<size_t>(end - begin);
      return n;
    }
    if (accept("(")) {
      NodePtr n = ternary();
      expect(")");
      return n;
    }
    size_t end = pos_;
    while (end < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_'))
      ++end;
    const std::string name = text_.substr(pos_, end - pos_);
    if (name.empty()) fail("unexpected `" + std::string(1, c) + "`");
    pos_ = end;
    if (name == "x") return node(FormulaOp::X);
    if (name == "a") return node(FormulaOp::A);
    static const std::pair<const char*, std::pair<FormulaOp, size_t>> functions[] = {
        {"max", {FormulaOp::Max, 2}},
        {"min", {FormulaOp::Min, 2}},
        {"relu6", {FormulaOp::Relu6, 1}},
        {"sigmoid", {FormulaOp::Sigmoid, 1}}};
    for (const auto& [fname, spec] : functions) {
      if (name != fname) continue;
      expect("(");
      std::vector<NodePtr> args;
      args.push_back(ternary());
      while (accept(",")) args.push_back(ternary());
      expect(")");
      if (args.size() != spec.second)
        fail(name + " takes " + std::to_string(spec.second) + " arguments");
      return node(spec.first, std::move(args));
    }
    fail("unknown name `" + name + "`");
  }

  const std::string& text_;
  size_t pos_ = 0;
};

bool is_condition(FormulaOp op) {
  switch (op) {
    case FormulaOp::Less:
    case FormulaOp::LessEq:
    case FormulaOp::Greater:
    case FormulaOp::GreaterEq:
    case FormulaOp::Equal:
    case FormulaOp::And:
      return true;
    default:
      return false;
  }
}

// A value where a number is wanted and a condition where one is wanted: checked once at
// parse time, so that emit and evaluate never meet a mismatch.
void check_types(const FormulaNode& n, bool want_condition, const std::string& text) {
  if (is_condition(n.op) != want_condition)
    internal_error(__FILE__, __LINE__,
                   "elementwise formula `" + text + "`: a " +
                       (want_condition ? "number where a condition" : "condition where a number") +
                       " is needed");
  for (size_t i = 0; i < n.args.size(); ++i) {
    bool condition = (n.op == FormulaOp::And) || (n.op == FormulaOp::Select && i == 0);
    check_types(*n.args[i], condition, text);
  }
}

// std::max(p, q) is `p < q ? q : p`, std::min(p, q) is `q < p ? q : p`.
llvm::Value* emit_max(llvm::IRBuilderBase& b, llvm::Value* p, llvm::Value* q) {
  return b.CreateSelect(b.CreateFCmpOLT(p, q), q, p);
}
llvm::Value* emit_min(llvm::IRBuilderBase& b, llvm::Value* p, llvm::Value* q) {
  return b.CreateSelect(b.CreateFCmpOLT(q, p), q, p);
}

llvm::Value* emit_node(const FormulaNode& n, llvm::IRBuilderBase& b, llvm::Value* x, double a) {
  llvm::Type* type = x->getType();
  auto arg = [&](size_t i) { return emit_node(*n.args[i], b, x, a); };
  auto constant = [&](double v) { return llvm::ConstantFP::get(type, v); };
  switch (n.op) {
    case FormulaOp::Number:
      return constant(n.number);
    case FormulaOp::X:
      return x;
    case FormulaOp::A:
      return constant(a);
    case FormulaOp::Neg:
      return b.CreateFNeg(arg(0));
    case FormulaOp::Add:
      return b.CreateFAdd(arg(0), arg(1));
    case FormulaOp::Sub:
      return b.CreateFSub(arg(0), arg(1));
    case FormulaOp::Mul:
      return b.CreateFMul(arg(0), arg(1));
    case FormulaOp::Div:
      return b.CreateFDiv(arg(0), arg(1));
    case FormulaOp::Less:
      return b.CreateFCmpOLT(arg(0), arg(1));
    case FormulaOp::LessEq:
      return b.CreateFCmpOLE(arg(0), arg(1));
    case FormulaOp::Greater:
      return b.CreateFCmpOGT(arg(0), arg(1));
    case FormulaOp::GreaterEq:
      return b.CreateFCmpOGE(arg(0), arg(1));
    case FormulaOp::Equal:
      return b.CreateFCmpOEQ(arg(0), arg(1));
    case FormulaOp::And:
      return b.CreateAnd(arg(0), arg(1));
    case FormulaOp::Select:
      return b.CreateSelect(arg(0), arg(1), arg(2));
    case FormulaOp::Max:
      return emit_max(b, arg(0), arg(1));
    case FormulaOp::Min:
      return emit_min(b, arg(0), arg(1));
    case FormulaOp::Relu6:
      return emit_min(b, emit_max(b, arg(0), constant(0)), constant(6));
    case FormulaOp::Sigmoid: {
      llvm::Value* e = b.CreateUnaryIntrinsic(llvm::Intrinsic::exp, b.CreateFNeg(arg(0)));
      return b.CreateFDiv(constant(1), b.CreateFAdd(constant(1), e));
    }
  }
  internal_error(__FILE__, __LINE__, "elementwise formula: unknown node");
}

double evaluate_node(const FormulaNode& n, double x, double a) {
  auto arg = [&](size_t i) { return evaluate_node(*n.args[i], x, a); };
  switch (n.op) {
    case FormulaOp::Number:
      return n.number;
    case FormulaOp::X:
      return x;
    case FormulaOp::A:
      return a;
    case FormulaOp::Neg:
      return -arg(0);
    case FormulaOp::Add:
      return arg(0) + arg(1);
    case FormulaOp::Sub:
      return arg(0) - arg(1);
    case FormulaOp::Mul:
      return arg(0) * arg(1);
    case FormulaOp::Div:
      return arg(0) / arg(1);
    case FormulaOp::Less:
      return arg(0) < arg(1);
    case FormulaOp::LessEq:
      return arg(0) <= arg(1);
    case FormulaOp::Greater:
      return arg(0) > arg(1);
    case FormulaOp::GreaterEq:
      return arg(0) >= arg(1);
    case FormulaOp::Equal:
      return arg(0) == arg(1);
    case FormulaOp::And:
      return arg(0) != 0 && arg(1) != 0;
    case FormulaOp::Select:
      return arg(0) != 0 ? arg(1) : arg(2);
    case FormulaOp::Max:
      return std::max(arg(0), arg(1));
    case FormulaOp::Min:
      return std::min(arg(0), arg(1));
    case FormulaOp::Relu6:
      return std::min(std::max(arg(0), 0.0), 6.0);
    case FormulaOp::Sigmoid:
      return 1.0 / (1.0 + std::exp(-arg(0)));
  }
  internal_error(__FILE__, __LINE__, "elementwise formula: unknown node");
}

}  // namespace

Formula::Formula(const std::string& text) : text_(text) {
  root_ = Parser(text_).parse();
  check_types(*root_, false, text_);
}
Formula::~Formula() = default;
Formula::Formula(Formula&&) noexcept = default;
Formula& Formula::operator=(Formula&&) noexcept = default;

llvm::Value* Formula::emit(llvm::IRBuilderBase& builder, llvm::Value* x, double a) const {
  return emit_node(*root_, builder, x, a);
}

double Formula::evaluate(double x, double a) const {
  return evaluate_node(*root_, x, a);
}

}  // namespace nas
