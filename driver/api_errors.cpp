// nasc::Error and the conversion of compiler diagnostics into libnasc's public form.
#include "driver/api_internal.h"
#include "support/did_you_mean.h"

namespace nasc {

Error::Error(Kind kind, const std::string& message, std::vector<Diagnostic> diagnostics)
    : std::runtime_error(message), kind_(kind), diagnostics_(std::move(diagnostics)) {}

std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates) {
  return nas::did_you_mean(name, candidates);
}

namespace detail {
namespace {

Location to_public(const nas::SourceLoc& loc) {
  Location l;
  if (loc.file) l.file = loc.file->path;
  l.line = loc.line;
  l.column = loc.col;
  return l;
}

Severity to_public(nas::Severity s) {
  switch (s) {
    case nas::Severity::Error:
      return Severity::Error;
    case nas::Severity::Warning:
      return Severity::Warning;
    case nas::Severity::Note:
      return Severity::Note;
  }
  return Severity::Error;
}

}  // namespace

std::vector<Diagnostic> to_public(const nas::Diagnostics& diags) {
  std::vector<Diagnostic> out;
  for (const nas::Diagnostic& d : diags.all()) {
    Diagnostic p;
    p.severity = to_public(d.severity);
    p.location = to_public(d.loc);
    p.message = d.message;
    p.instance_path = d.instance_path;
    for (const auto& [loc, message] : d.notes) p.notes.push_back({to_public(loc), message});
    p.rendered = nas::Diagnostics::render(d);
    out.push_back(std::move(p));
  }
  return out;
}

void throw_diagnostics(const nas::Diagnostics& diags) {
  std::string message;
  for (const nas::Diagnostic& d : diags.all())
    if (d.severity == nas::Severity::Error) message += nas::Diagnostics::render(d);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  throw Error(Error::Kind::User, message, to_public(diags));
}

}  // namespace detail
}  // namespace nasc
