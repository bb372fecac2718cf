#include "runtime/report/report_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <limits>
#include <regex>

#include "runtime/train/tensor_file.h"

namespace nas {

namespace {

const char* const kDash = "—";

// Values beyond this are treated like NaN: a diverged loss would otherwise squash every
// other point of its plot onto one line (and overflow the axis arithmetic).
bool usable(double v) {
  return std::isfinite(v) && std::fabs(v) < 1e300;
}

// ---- Numbers as text -------------------------------------------------------------------

// `digits` significant digits in fixed notation (never an exponent): 1.93, 19.3, 193.
std::string fixed_sig(double v, int digits) {
  double a = std::fabs(v);
  int mag = a > 0 ? static_cast<int>(std::floor(std::log10(a))) : 0;
  int dec = std::clamp(digits - 1 - mag, 0, 12);
  return fmt::format("{:.{}f}", v, dec);
}

// 1930000 -> "1.93 M".
std::string si(double v) {
  if (!usable(v)) return kDash;
  const double a = std::fabs(v);
  if (a >= 1e9) return fixed_sig(v / 1e9, 3) + " G";
  if (a >= 1e6) return fixed_sig(v / 1e6, 3) + " M";
  if (a >= 1e3) return fixed_sig(v / 1e3, 3) + " k";
  return fixed_sig(v, 3);
}

std::string ms(double v) {
  return usable(v) ? fixed_sig(v, 3) + " ms" : kDash;
}

std::string percent(double fraction) {
  return usable(fraction) ? fmt::format("{:.2f}%", fraction * 100) : kDash;
}

std::string duration(double s) {
  if (!usable(s) || s <= 0) return kDash;
  if (s < 60) return fmt::format("{:.1f} s", s);
  const int64_t t = std::llround(s);
  if (t < 3600) return fmt::format("{} min {:02} s", t / 60, t % 60);
  return fmt::format("{} h {:02} min", t / 3600, t % 3600 / 60);
}

std::string or_dash(const std::string& s) {
  return s.empty() ? kDash : html_escape(s);
}

// "node10" after "node9": choice keys hold cell and node numbers.
bool natural_less(const std::string& a, const std::string& b) {
  auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && digit(a[i2])) ++i2;
      while (j2 < b.size() && digit(b[j2])) ++j2;
      size_t za = i, zb = j;
      while (za + 1 < i2 && a[za] == '0') ++za;
      while (zb + 1 < j2 && b[zb] == '0') ++zb;
      if (i2 - za != j2 - zb) return i2 - za < j2 - zb;
      int c = a.compare(za, i2 - za, b, zb, j2 - zb);
      if (c != 0) return c < 0;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i;
      ++j;
    }
  }
  if ((i == a.size()) != (j == b.size())) return i == a.size();
  return a < b;  // equal up to leading zeros: any fixed order will do
}

// ---- Line plots ------------------------------------------------------------------------

// An axis from lo to hi (both multiples of step) with ticks every step.
struct Axis {
  double lo, hi, step;
};

// 1, 2 or 5 times a power of ten, nearest to raw.
double nice_step(double raw) {
  const double e = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / e;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * e;
}

// Covers [lo, hi] with about 5 round ticks. No data (lo > hi) gives 0..1; a constant
// series gets a margin around it, not below 0 when the data is not.
Axis make_axis(double lo, double hi, bool integer) {
  if (!(lo <= hi)) {
    lo = 0;
    hi = 1;
  } else if (hi - lo <= 1e-9 * std::max(1.0, std::fabs(hi))) {
    const double pad = integer || lo == 0 ? 1 : std::fabs(lo) * 0.1;
    const bool nonnegative = lo >= 0;
    lo -= pad;
    hi += pad;
    if (nonnegative && lo < 0) lo = 0;
  }
  double step = nice_step((hi - lo) / 4);
  if (integer) step = std::max(step, 1.0);
  Axis a{std::floor(lo / step + 1e-9) * step, std::ceil(hi / step - 1e-9) * step, step};
  if (!(a.hi > a.lo)) a.hi = a.lo + step;
  return a;
}

std::vector<double> ticks(const Axis& a) {
  std::vector<double> t;
  const int64_t n = std::min<int64_t>(std::llround((a.hi - a.lo) / a.step), 50);
  for (int64_t i = 0; i <= n; ++i) {
    double v = a.lo + static_cast<double>(i) * a.step;
    if (std::fabs(v) < a.step * 1e-9) v = 0;  // no "-0.0"
    t.push_back(v);
  }
  return t;
}

// Tick labels with just enough decimals for the step; with si, scaled to k/M/G.
std::string tick_label(double v, const Axis& a, bool si_units) {
  double unit = 1;
  const char* suffix = "";
  if (si_units) {
    const double m = std::max(std::fabs(a.lo), std::fabs(a.hi));
    if (m >= 1e9)
      unit = 1e9, suffix = "G";
    else if (m >= 1e6)
      unit = 1e6, suffix = "M";
    else if (m >= 1e3)
      unit = 1e3, suffix = "k";
  }
  const int dec =
      std::clamp(static_cast<int>(-std::floor(std::log10(a.step / unit) + 1e-9)), 0, 12);
  return fmt::format("{:.{}f}{}", v / unit, dec, suffix);
}

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> points;  // (epoch, value), usable values only
};

struct Plot {
  std::string title, y_label;
  std::vector<Series> series;
  bool si_ticks = false;
  std::function<std::string(double)> value_text;  // for the point tooltips
  int width = 460, height = 260;
};

// Skips NaN (and unusable) values.
Series series_of(const std::vector<ReportEpoch>& epochs, std::string name, std::string color,
                 const std::function<double(const ReportEpoch&)>& get) {
  Series s{std::move(name), std::move(color), {}};
  for (const ReportEpoch& e : epochs) {
    const double v = get(e);
    if (usable(v)) s.points.emplace_back(static_cast<double>(e.epoch), v);
  }
  return s;
}

bool has_points(const Series& s) {
  return !s.points.empty();
}

// Horizontal grid lines with the y ticks' labels, then the x ticks with theirs, for a data
// area at (left, top) of w x h whose axes X and Y map into it; si_x / si_y: labels in SI
// units (1.2M) instead of plain numbers.
template <typename MapX, typename MapY>
void append_ticks(std::string& o, const Axis& ax, const Axis& ay, MapX X, MapY Y, double left,
                  double top, double w, double h, bool si_x, bool si_y) {
  for (double v : ticks(ay))
    o += fmt::format(
        "<line stroke=\"#e8e8e8\" x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\"/>"
        "<text x=\"{3}\" y=\"{1:.1f}\" dy=\"0.32em\" text-anchor=\"end\">{4}</text>\n",
        left, Y(v), left + w, left - 6, tick_label(v, ay, si_y));
  for (double v : ticks(ax))
    o += fmt::format(
        "<line stroke=\"#666\" x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\"/>"
        "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
        X(v), top + h, top + h + 4, top + h + 16, tick_label(v, ax, si_x));
}

std::string render_plot(const Plot& p) {
  const double left = 62, right = 12, top = 30, bottom = 38;
  const double w = p.width - left - right, h = p.height - top - bottom;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  size_t n_points = 0;
  for (const Series& s : p.series)
    for (auto [x, y] : s.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
      ++n_points;
    }
  const Axis ax = make_axis(x0, x1, true), ay = make_axis(y0, y1, false);
  auto X = [&](double x) { return left + (x - ax.lo) / (ax.hi - ax.lo) * w; };
  auto Y = [&](double y) { return top + h - (y - ay.lo) / (ay.hi - ay.lo) * h; };

  std::string o = fmt::format(
      "<svg class=\"plot\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" role=\"img\" "
      "font-family=\"system-ui,sans-serif\" font-size=\"11\" fill=\"#333\" "
      "aria-label=\"{2}\">\n<text font-size=\"12\" font-weight=\"600\" x=\"{3}\" "
      "y=\"18\">{2}</text>\n",
      p.width, p.height, html_escape(p.title), left);
  // Legend (for more than one series), right-aligned in the title row (text width
  // estimated at 6.5 px a character).
  double lx = left + w;
  for (auto it = p.series.rbegin(); p.series.size() > 1 && it != p.series.rend(); ++it) {
    lx -= 22 + 6.5 * static_cast<double>(it->name.size()) + 10;
    o += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"14\" x2=\"{1:.1f}\" y2=\"14\" stroke=\"{2}\" "
        "stroke-width=\"2\"/><text x=\"{3:.1f}\" y=\"18\">{4}</text>\n",
        lx, lx + 16, it->color, lx + 20, html_escape(it->name));
  }
  append_ticks(o, ax, ay, X, Y, left, top, w, h, false, p.si_ticks);
  o += fmt::format(
      "<line stroke=\"#666\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>"
      "<line stroke=\"#666\" x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\"/>\n"
      "<text x=\"{4}\" y=\"{5}\" text-anchor=\"middle\">epoch</text>\n",
      left, top, top + h, left + w, left + w / 2, top + h + 32);
  if (!p.y_label.empty())
    o += fmt::format(
        "<text x=\"14\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {0})\">{1}"
        "</text>\n",
        top + h / 2, html_escape(p.y_label));
  if (n_points == 0)
    o += fmt::format(
        "<text fill=\"#999\" font-size=\"13\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no "
        "data</text>\n",
        left + w / 2, top + h / 2);
  for (const Series& s : p.series) {
    if (s.points.size() >= 2) {
      o += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"",
                       s.color);
      for (auto [x, y] : s.points) o += fmt::format("{:.1f},{:.1f} ", X(x), Y(y));
      o += "\"/>\n";
    }
    // Markers (with the value on hover) while they stay distinguishable; a single point
    // would otherwise not show at all.
    if (s.points.size() <= 60)
      for (auto [x, y] : s.points)
        o += fmt::format(
            "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.6\" fill=\"{}\"><title>{}, epoch {}: "
            "{}</title></circle>\n",
            X(x), Y(y), s.color, html_escape(s.name), static_cast<int64_t>(x), p.value_text(y));
  }
  return o + "</svg>\n";
}

// Evolution's candidates: accuracy (%) against cost, every candidate a grey dot, the
// front orange and joined, the bound a dashed vertical line.
std::string render_pareto(const ReportPareto& p) {
  const double width = 460, height = 300, left = 62, right = 12, top = 30, bottom = 40;
  const double w = width - left - right, h = height - top - bottom;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  std::vector<std::pair<double, double>> points;
  for (auto [c, a] : p.points)
    if (usable(c) && usable(a)) points.emplace_back(c, a * 100);
  for (auto [x, y] : points)
    x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  if (usable(p.bound)) x0 = std::min(x0, p.bound), x1 = std::max(x1, p.bound);
  const bool si_cost = p.cost != "latency_ms";
  const Axis ax = make_axis(x0, x1, false), ay = make_axis(y0, y1, false);
  auto X = [&](double x) { return left + (x - ax.lo) / (ax.hi - ax.lo) * w; };
  auto Y = [&](double y) { return top + h - (y - ay.lo) / (ay.hi - ay.lo) * h; };
  const std::string x_label = p.cost == "latency_ms" ? "estimated latency (ms)"
                              : p.cost == "macs"     ? "MACs"
                                                     : "params";
  std::string o = fmt::format(
      "<svg class=\"plot pareto\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "role=\"img\" font-family=\"system-ui,sans-serif\" font-size=\"11\" fill=\"#333\" "
      "aria-label=\"Pareto front\">\n<text font-size=\"12\" font-weight=\"600\" x=\"{2}\" "
      "y=\"18\">validation accuracy against {3}: {4} candidates, {5} on the front</text>\n",
      width, height, left, html_escape(x_label), points.size(), p.front.size());
  append_ticks(o, ax, ay, X, Y, left, top, w, h, si_cost, false);
  o += fmt::format(
      "<line stroke=\"#666\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>"
      "<line stroke=\"#666\" x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\"/>\n"
      "<text x=\"{4}\" y=\"{5}\" text-anchor=\"middle\">{6}</text>\n"
      "<text x=\"14\" y=\"{7}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {7})\">"
      "accuracy (%)</text>\n",
      left, top, top + h, left + w, left + w / 2, top + h + 34, html_escape(x_label), top + h / 2);
  if (usable(p.bound))
    o += fmt::format(
        "<line class=\"bound\" stroke=\"#d62728\" stroke-dasharray=\"4 3\" x1=\"{0:.1f}\" "
        "y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\"><title>bound {3}</title></line>\n",
        X(p.bound), top, top + h, fixed_sig(p.bound, 4));
  for (auto [x, y] : points)
    o += fmt::format(
        "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.4\" fill=\"#aaa\"><title>{}, "
        "{:.2f}%</title></circle>\n",
        X(x), Y(y), fixed_sig(x, 4), y);
  std::string line, marks;
  for (auto [c, a] : p.front)
    if (usable(c) && usable(a)) {
      line += fmt::format("{:.1f},{:.1f} ", X(c), Y(a * 100));
      marks += fmt::format(
          "<circle class=\"front\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.4\" fill=\"#ff7f0e\">"
          "<title>front: {}, {:.2f}%</title></circle>\n",
          X(c), Y(a * 100), fixed_sig(c, 4), a * 100);
    }
  if (!line.empty())
    o += "<polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"1.5\" points=\"" + line +
         "\"/>\n";
  return o + marks + "</svg>\n";
}

// ---- Heatmaps --------------------------------------------------------------------------

// Probability 0..1 on a white-to-dark-blue scale (absolute, so a uniform 1/8 stays pale).
std::string heat_color(double p) {
  static const double stops[5][3] = {
      {247, 251, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};
  const double t = std::clamp(p, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  int c[3];
  for (int k = 0; k < 3; ++k)
    c[k] = static_cast<int>(std::lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k])));
  return fmt::format("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
}

std::vector<std::string> split_plus(const std::string& s) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t q = s.find('+', pos);
    if (q == std::string::npos) q = s.size();
    parts.push_back(s.substr(pos, q - pos));
    pos = q + 1;
  }
  return parts;
}

std::string render_heatmap(const std::string& key, const ReportInput& in) {
  const std::vector<ReportEpoch>& epochs = in.epochs;
  std::vector<std::string> names;
  if (auto it = in.candidates.find(key); it != in.candidates.end()) names = it->second;
  size_t rows = names.size();
  for (const ReportEpoch& e : epochs)
    if (auto it = e.probs.find(key); it != e.probs.end()) rows = std::max(rows, it->second.size());
  for (size_t r = names.size(); r < rows; ++r) names.push_back(fmt::format("#{}", r));

  // Compact: about 220 px of cells whatever the epoch count, 2..16 px a cell.
  const size_t n = epochs.size();
  const int cell = std::clamp(n ? static_cast<int>(220 / n) : 16, 2, 16);
  std::string o = fmt::format("<div class=\"hm\"><h3>{}</h3>\n", html_escape(key));
  if (n == 0 || rows == 0) return o + "<p class=\"note\">no probabilities recorded</p></div>\n";
  o += fmt::format("<table style=\"--w:{}px\">\n", cell);
  for (size_t r = 0; r < rows; ++r) {
    const std::string name = html_escape(names[r]);
    o += fmt::format("<tr><th>{}</th>", name);
    for (const ReportEpoch& e : epochs) {
      auto it = e.probs.find(key);
      const double p = it != e.probs.end() && r < it->second.size()
                           ? it->second[r]
                           : std::numeric_limits<double>::quiet_NaN();
      bool chosen = false;
      if (auto g = e.genotype.find(key); g != e.genotype.end()) {
        const std::vector<std::string> parts = split_plus(g->second);
        chosen = std::find(parts.begin(), parts.end(), names[r]) != parts.end();
      }
      const std::string what = fmt::format("epoch {} · {}: ", e.epoch, name);
      const char* cls = chosen ? " on" : "";
      if (std::isfinite(p))
        o += fmt::format("<td class=\"c{}\" style=\"background:{}\" title=\"{}{}{}\"></td>", cls,
                         heat_color(p), what, p, chosen ? " (chosen)" : "");
      else
        o += fmt::format("<td class=\"c na{}\" title=\"{}{}\"></td>", cls, what, kDash);
    }
    o += "</tr>\n";
  }
  o += fmt::format("<tr class=\"ax\"><th></th><td colspan=\"{}\"><div><span>{}</span>", n,
                   epochs.front().epoch);
  if (n > 1) o += fmt::format("<span>{}</span>", epochs.back().epoch);
  return o + "</div></td></tr>\n</table></div>\n";
}

// ---- Final architecture ----------------------------------------------------------------

std::string choice_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const nlohmann::json& x : v) s += (s.empty() ? "" : "+") + choice_text(x);
    return s;
  }
  return v.dump();
}

std::string render_final_arch(const nlohmann::json& arch) {
  if (!arch.is_object() || arch.empty()) return "<p class=\"note\">no architecture recorded</p>\n";
  std::string o;
  const nlohmann::json* choices = &arch;
  if (auto it = arch.find("choices"); it != arch.end() && it->is_object()) {
    choices = &*it;
    if (auto n = arch.find("network"); n != arch.end() && n->is_string())
      o += fmt::format("<p>network <b>{}</b></p>\n", html_escape(n->get<std::string>()));
  }
  std::vector<std::string> keys;
  for (auto it = choices->begin(); it != choices->end(); ++it) keys.push_back(it.key());
  std::sort(keys.begin(), keys.end(), natural_less);
  o += "<table class=\"arch\"><tr><th>choice</th><th>candidate</th></tr>\n";
  for (const std::string& k : keys) {
    const std::string v = choice_text((*choices)[k]);
    o += fmt::format("<tr{}><td>{}</td><td>{}</td></tr>\n", v == "none" ? " class=\"none\"" : "",
                     html_escape(k), html_escape(v));
  }
  return o + "</table>\n";
}

// The <svg> element of a graphviz document, for inlining: the prolog (XML declaration,
// doctype, comments) goes, and so do the root's namespace declarations, which HTML does
// not need and which are the only URLs in such a drawing. Empty when there is no <svg>.
std::string inline_svg(const std::string& doc) {
  const size_t b = doc.find("<svg");
  const size_t e = doc.rfind("</svg>");
  if (b == std::string::npos || e == std::string::npos || e < b) return "";
  std::string svg = doc.substr(b, e + 6 - b);
  const size_t gt = svg.find('>');
  static const std::regex xmlns(R"(\s+xmlns(:[A-Za-z_][\w.-]*)?\s*=\s*("[^"]*"|'[^']*'))");
  return std::regex_replace(svg.substr(0, gt), xmlns, "") + svg.substr(gt) + "\n";
}

const char* const kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:24px auto;max-width:1280px;padding:0 16px}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:12px;margin:0 0 4px;font-weight:600;overflow-wrap:anywhere}
table.sum td,table.sum th,table.arch td,table.arch th{padding:2px 12px 2px 0;text-align:left;vertical-align:top}
table.sum th,table.arch th{color:#555;font-weight:600}
table.arch tr.none td{color:#aaa}
code{font:12px ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.row{display:flex;flex-wrap:wrap;gap:12px}
.note{color:#666;font-size:12px}
.hm-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px 16px}
.hm{overflow-x:auto}.hm table{border-collapse:collapse;font-size:11px}
.hm th{font-weight:normal;text-align:right;padding:0 6px 0 0;white-space:nowrap;color:#444}
.hm td.c{width:var(--w);min-width:var(--w);height:11px;padding:0}
.hm td.na{background:#eee}.hm td.on{box-shadow:inset 0 0 0 1px #f58518}
.hm tr.ax div{display:flex;justify-content:space-between;color:#888;font-size:10px}
.scale{display:inline-block;width:120px;height:10px;vertical-align:middle;border:1px solid #ccc;
background:linear-gradient(90deg,#f7fbff,#c6dbef,#6baed6,#2171b5,#08306b)}
.drawing{overflow:auto;max-height:85vh;border:1px solid #eee;margin-top:12px}
.drawing svg{max-width:100%;height:auto}
)";

}  // namespace

std::string html_escape(const std::string& text) {
  std::string o;
  o.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

namespace {

// --retrain's table: what was found, what was retrained, and the one test number.
std::string render_retrain_summary(const ReportInput& in) {
  const ReportRetrain& r = *in.retrain;
  std::string o = "<h2>Search and retrain</h2>\n<table class=\"sum\">\n";
  auto row = [&](const char* k, const std::string& v) {
    o += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", k, v);
  };
  row("test accuracy", r.stopped || !usable(r.test_accuracy)
                           ? std::string("— (the retrain stopped before its last epoch)")
                           : "<b>" + percent(r.test_accuracy) +
                                 "</b> (the test split, read once "
                                 "after the last retrain epoch)");
  row("test loss", usable(r.test_loss) ? fixed_sig(r.test_loss, 4) : kDash);
  row("found architecture",
      "params " + si(in.final_params) + ", MACs " + si(in.final_macs) +
          (usable(in.final_latency_ms) ? ", latency " + ms(in.final_latency_ms) + " (estimated)"
                                       : ""));
  row("retrained network", (r.network.empty() ? std::string("the search network")
                                              : "<code>" + html_escape(r.network) + "</code>") +
                               ": params " + si(r.params) + ", MACs " + si(r.macs));
  row("retrain epochs", fmt::format("{} of {}", r.curve.size(), r.epochs));
  row("search time", duration(r.search_seconds));
  row("retrain time", duration(r.seconds));
  row("total time", duration(r.search_seconds + r.seconds));
  return o + "</table>\n";
}

std::string render_retrain_curves(const ReportRetrain& r) {
  auto plain = [](double v) { return fixed_sig(v, 4); };
  auto pct = [](double v) { return fmt::format("{:.2f}%", v); };
  std::string o = "<h2>Retrain curves</h2>\n<div class=\"row\">\n";
  Plot loss{"retrain loss", "loss", {}, false, plain};
  loss.series.push_back(
      series_of(r.curve, "train", "#1f77b4", [](auto& e) { return e.train_loss; }));
  loss.series.push_back(
      series_of(r.curve, "valid", "#ff7f0e", [](auto& e) { return e.valid_loss; }));
  o += render_plot(loss);
  Plot acc{"retrain accuracy", "accuracy (%)", {}, false, pct};
  acc.series.push_back(
      series_of(r.curve, "train", "#1f77b4", [](auto& e) { return e.train_acc * 100; }));
  acc.series.push_back(
      series_of(r.curve, "valid", "#ff7f0e", [](auto& e) { return e.valid_acc * 100; }));
  o += render_plot(acc);
  return o + "</div>\n";
}

}  // namespace

std::string render_report_html(const ReportInput& in) {
  const std::string title = in.title.empty() ? "nasc search report" : in.title;
  const std::vector<ReportEpoch>& ep = in.epochs;
  double last_valid = NAN;
  for (const ReportEpoch& e : ep)
    if (usable(e.valid_acc)) last_valid = e.valid_acc;

  std::string o = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
      "<title>{0}</title>\n<style>{1}</style></head><body>\n<h1>{0}</h1>\n",
      html_escape(title), kStyle);
  auto row = [&](const char* k, const std::string& v) {
    o += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", k, v);
  };
  if (in.retrain) o += render_retrain_summary(in) + "<h2>Search</h2>\n";
  o += "<table class=\"sum\">\n";
  row("algorithm", or_dash(in.algorithm));
  row("search space",
      in.space_file.empty() ? kDash : "<code>" + html_escape(in.space_file) + "</code>");
  row("command",
      in.command_line.empty() ? kDash : "<code>" + html_escape(in.command_line) + "</code>");
  row("epochs", std::to_string(ep.size()));
  row("wall time", duration(in.seconds));
  row("valid accuracy (last)", percent(last_valid));
  row("final params", si(in.final_params));
  row("final MACs", si(in.final_macs));
  row("final latency", ms(in.final_latency_ms));
  if (!std::isnan(in.final_measured_latency_ms))
    row("final latency, measured", ms(in.final_measured_latency_ms));
  row("final activation memory", std::isnan(in.final_activation_bytes)
                                     ? std::string(kDash)
                                     : si(in.final_activation_bytes) + "B");
  o += "</table>\n";

  auto plain = [](double v) { return fixed_sig(v, 4); };
  auto pct = [](double v) { return fmt::format("{:.2f}%", v); };
  o += "<h2>Training curves</h2>\n<div class=\"row\">\n";
  Plot loss{"loss", "loss", {}, false, plain};
  loss.series.push_back(series_of(ep, "train", "#1f77b4", [](auto& e) { return e.train_loss; }));
  loss.series.push_back(series_of(ep, "valid", "#ff7f0e", [](auto& e) { return e.valid_loss; }));
  o += render_plot(loss);
  Plot acc{"accuracy", "accuracy (%)", {}, false, pct};
  acc.series.push_back(
      series_of(ep, "train", "#1f77b4", [](auto& e) { return e.train_acc * 100; }));
  acc.series.push_back(
      series_of(ep, "valid", "#ff7f0e", [](auto& e) { return e.valid_acc * 100; }));
  o += render_plot(acc);
  o += "</div>\n";
  if (in.retrain) o += render_retrain_curves(*in.retrain);

  // The genotype's cost, one small plot per measure that some epoch has.
  std::vector<Plot> cost;
  auto add_cost = [&](const char* name, const char* color, double ReportEpoch::*field,
                      bool si_ticks, std::function<std::string(double)> text) {
    Series s = series_of(ep, name, color, [field](const ReportEpoch& e) { return e.*field; });
    if (has_points(s)) cost.push_back(Plot{name, "", {s}, si_ticks, std::move(text), 340, 210});
  };
  add_cost("params", "#2ca02c", &ReportEpoch::params, true, si);
  add_cost("MACs", "#9467bd", &ReportEpoch::macs, true, si);
  add_cost("latency (ms)", "#8c564b", &ReportEpoch::latency_ms, false, plain);
  add_cost("activation memory (bytes)", "#17becf", &ReportEpoch::activation_bytes, true, si);
  if (!cost.empty()) {
    o += "<h2>Genotype cost per epoch</h2>\n<div class=\"row\">\n";
    for (const Plot& p : cost) o += render_plot(p);
    o += "</div>\n";
  }

  std::vector<std::string> keys;
  for (const auto& [k, names] : in.candidates) keys.push_back(k);
  for (const ReportEpoch& e : ep)
    for (const auto& [k, p] : e.probs) keys.push_back(k);
  std::sort(keys.begin(), keys.end(), natural_less);
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  o += "<h2>Architecture probabilities</h2>\n";
  if (keys.empty()) {
    o += "<p class=\"note\">no choices recorded</p>\n";
  } else {
    o += fmt::format(
        "<p class=\"note\">{} choice key{}: one heatmap each, rows = candidates, columns = epochs. "
        "Colour = probability, 0 <span class=\"scale\"></span> 1; outlined = chosen at that "
        "epoch; hover a cell for the exact value.</p>\n<div class=\"hm-grid\">\n",
        keys.size(), keys.size() == 1 ? "" : "s");
    for (const std::string& k : keys) o += render_heatmap(k, in);
    o += "</div>\n";
  }

  if (!in.pareto.points.empty())
    o += "<h2>Evolution: accuracy against cost</h2>\n" + render_pareto(in.pareto);
  o += "<h2>Final architecture</h2>\n" + render_final_arch(in.final_arch);
  if (!in.arch_svg.empty()) {
    const std::string svg = inline_svg(in.arch_svg);
    o += svg.empty() ? "<p class=\"note\">the drawing is not an SVG document</p>\n"
                     : "<div class=\"drawing\">\n" + svg + "</div>\n";
  }
  return o + "<p class=\"note\">written by nasc</p>\n</body></html>\n";
}

void write_report_html(const std::string& path, const ReportInput& in) {
  const std::string html = render_report_html(in);
  write_file_atomic(path, html);  // a DataFileError naming the path when it cannot
}

}  // namespace nas
