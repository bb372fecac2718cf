#include "runtime/estimate/lut.h"

#include <fmt/format.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "runtime/cpu/threads.h"
#include "runtime/exec/backend_registry.h"
#include "support/errors.h"
#include "support/json_file.h"

namespace nas {
namespace {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t start = line.find_first_not_of(' ', colon + 1);
        return start == std::string::npos ? "" : line.substr(start);
      }
    }
  return "unknown";
}

using Json = nlohmann::json;

// Typed field access. `entry` is the signature of the entry being read, or "" for the
// table's own fields; errors are LutEntryErrors naming the file and the entry.
struct Reader {
  const std::string& path;
  [[noreturn]] void fail(const std::string& entry, const std::string& what) const {
    throw LutEntryError(path, entry, what);
  }
  // "the table", "\"device\"" or "the entry": what the field belongs to, for messages.
  static std::string owner(const std::string& entry, const std::string& section) {
    if (!section.empty()) return "\"" + section + "\"";
    return entry.empty() ? "the table" : "the entry";
  }
  const Json& field(const Json& obj, const std::string& key, const std::string& entry,
                    const std::string& section = "") const {
    auto it = obj.find(key);
    if (it == obj.end()) fail(entry, owner(entry, section) + " has no \"" + key + "\"");
    return *it;
  }
  std::string str(const Json& obj, const std::string& key, const std::string& entry,
                  const std::string& section = "") const {
    const Json& v = field(obj, key, entry, section);
    if (!v.is_string()) fail(entry, "\"" + key + "\" must be a string, got " + v.dump());
    return v.get<std::string>();
  }
  int64_t integer(const Json& obj, const std::string& key, const std::string& entry, int64_t lo,
                  int64_t hi, const std::string& section = "") const {
    const Json& v = field(obj, key, entry, section);
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      fail(entry,
           fmt::format("\"{}\" must be an integer in {}..{}, got {}", key, lo, hi, v.dump()));
    return v.get<int64_t>();
  }
  double number(const Json& obj, const std::string& key, const std::string& entry, double lo,
                double hi, const std::string& section = "") const {
    const Json& v = field(obj, key, entry, section);
    if (!v.is_number() || !(v.get<double>() >= lo) || !(v.get<double>() <= hi))
      fail(entry, fmt::format("\"{}\" must be a number in {}..{}, got {}", key, lo, hi, v.dump()));
    return v.get<double>();
  }
};

// "calibration": {"scale": S, "ratios": [R, ...]}, S the median of the ratios.
LatencyCalibration read_calibration(const Reader& r, const Json& c) {
  if (!c.is_object()) r.fail("", "\"calibration\" must be an object, got " + c.dump());
  const double lo = 1 / kMaxCalibration, hi = kMaxCalibration;
  const double scale = r.number(c, "scale", "", lo, hi, "calibration");
  const Json& ratios = r.field(c, "ratios", "", "calibration");
  if (!ratios.is_array() || ratios.empty() || ratios.size() > 10000)
    r.fail("", "\"calibration\" \"ratios\" must be a list of 1 to 10000 numbers");
  std::vector<double> values;
  for (const Json& x : ratios) {
    if (!x.is_number() || !(x.get<double>() >= lo) || !(x.get<double>() <= hi))
      r.fail("", fmt::format("\"calibration\" \"ratios\" must be numbers in {}..{}, got {}", lo, hi,
                             x.dump()));
    values.push_back(x.get<double>());
  }
  LatencyCalibration out = calibration_from(values);
  if (std::abs(out.scale - scale) > 1e-6 * scale)
    r.fail("", fmt::format("\"calibration\" \"scale\" {} is not the median of its ratios ({})",
                           scale, out.scale));
  return out;
}

}  // namespace

std::string DeviceFingerprint::describe() const {
  return fmt::format("{}, {}, {} cores, {} thread{}, oneDNN {}{}", backend, cpu_model, cores,
                     threads, threads == 1 ? "" : "s", onednn_version,
                     gpu.empty() ? "" : "; GPU " + gpu);
}

DeviceFingerprint current_device(const std::string& backend) {
  DeviceFingerprint d;
  d.backend = backend.empty() ? default_backend_name() : backend;
  for (const BackendInfo& info : registered_backends())
    if (info.name == d.backend) d.gpu = probe_backend(info).device;
  d.cpu_model = cpu_model_name();
  d.cores = static_cast<int>(std::thread::hardware_concurrency());
  d.threads = cpu_threads();
  const dnnl_version_t* v = dnnl_version();
  d.onednn_version =
      fmt::format("{}.{}.{} ({})", v->major, v->minor, v->patch, v->hash ? v->hash : "no hash");
  return d;
}

LatencyTable parse_lut(const std::string& text, const std::string& path) {
  Reader r{path};
  const Json j = parse_json(text, path);
  if (!j.is_object()) r.fail("", "not a latency table: the top level must be an object");
  LatencyTable t;
  int64_t format = r.integer(j, "format", "", 1, 1000);
  if (format != LatencyTable::kFormat)
    r.fail("", fmt::format("format {} is not supported (this nasc reads format {})", format,
                           LatencyTable::kFormat));
  t.batch = r.integer(j, "batch", "", 1, 1 << 20);
  if (j.contains("network")) t.network = r.str(j, "network", "");
  const Json& dev = r.field(j, "device", "");
  if (!dev.is_object()) r.fail("", "\"device\" must be an object");
  t.device.backend = r.str(dev, "backend", "", "device");
  t.device.cpu_model = r.str(dev, "cpu_model", "", "device");
  t.device.cores = static_cast<int>(r.integer(dev, "cores", "", 0, 1 << 20, "device"));
  t.device.threads = static_cast<int>(r.integer(dev, "threads", "", 0, 1 << 20, "device"));
  t.device.onednn_version = r.str(dev, "onednn_version", "", "device");
  // Tables measured before GPU backends existed have no "gpu": a CPU backend's.
  if (dev.contains("gpu")) t.device.gpu = r.str(dev, "gpu", "", "device");
  const Json& set = r.field(j, "settings", "");
  if (!set.is_object()) r.fail("", "\"settings\" must be an object");
  t.settings.warmup = static_cast<int>(r.integer(set, "warmup", "", 0, 1000000, "settings"));
  t.settings.repetitions =
      static_cast<int>(r.integer(set, "repetitions", "", 1, 1000000, "settings"));
  t.settings.trim = r.number(set, "trim", "", 0, 0.49, "settings");
  std::string stat = r.str(set, "statistic", "", "settings");
  if (stat != "min" && stat != "median" && stat != "trimmed_mean")
    r.fail("",
           "\"settings\" \"statistic\" must be \"min\", \"median\" or \"trimmed_mean\", got \"" +
               stat + "\"");
  t.settings.statistic = stat;
  t.settings.min_sample_us = r.number(set, "min_sample_us", "", 0, 1e7, "settings");
  const Json& entries = r.field(j, "entries", "");
  if (!entries.is_object()) r.fail("", "\"entries\" must be an object keyed by signature");
  for (const auto& [key, e] : entries.items()) {
    if (!e.is_object()) r.fail(key, "must be an object, got " + e.dump());
    LutEntry le;
    le.ms = r.number(e, "ms", key, 0, 1e9);
    le.median_ms = r.number(e, "median_ms", key, 0, 1e9);
    le.mean_ms = r.number(e, "mean_ms", key, 0, 1e9);
    le.min_ms = r.number(e, "min_ms", key, 0, 1e9);
    le.max_ms = r.number(e, "max_ms", key, 0, 1e9);
    le.samples = static_cast<int>(r.integer(e, "samples", key, 1, 1000000));
    le.kind = e.contains("kind") ? r.str(e, "kind", key) : "step";
    if (le.kind != "step" && le.kind != "unit")
      r.fail(key, "\"kind\" must be \"step\" or \"unit\", got \"" + le.kind + "\"");
    if (e.contains("measured_in")) {
      std::string how = r.str(e, "measured_in", key);
      if (how != "network" && how != "isolation")
        r.fail(key, "\"measured_in\" must be \"network\" or \"isolation\", got \"" + how + "\"");
      le.in_network = how == "network";
    }
    if (e.contains("steps")) {
      const Json& s = e["steps"];
      if (!s.is_array()) r.fail(key, "\"steps\" must be a list of signatures");
      for (const Json& x : s) {
        if (!x.is_string()) r.fail(key, "\"steps\" must be a list of signatures");
        le.steps.push_back(x.get<std::string>());
      }
    }
    t.entries.emplace(key, std::move(le));
  }
  if (j.contains("calibration")) t.calibration = read_calibration(r, j["calibration"]);
  return t;
}

LatencyCalibration calibration_from(std::vector<double> ratios) {
  NAS_CHECK(!ratios.empty(), "a calibration needs at least one network");
  LatencyCalibration c;
  c.ratios = ratios;
  std::sort(ratios.begin(), ratios.end());
  const size_t n = ratios.size();
  c.scale = n % 2 ? ratios[n / 2] : 0.5 * (ratios[n / 2 - 1] + ratios[n / 2]);
  return c;
}

LatencyTable load_lut(const std::string& path) {
  return parse_lut(read_text_file(path), path);
}

std::string lut_to_json(const LatencyTable& t) {
  nlohmann::ordered_json j;
  j["format"] = LatencyTable::kFormat;
  j["network"] = t.network;
  j["batch"] = t.batch;
  j["device"] = {{"backend", t.device.backend},
                 {"cpu_model", t.device.cpu_model},
                 {"cores", t.device.cores},
                 {"threads", t.device.threads},
                 {"onednn_version", t.device.onednn_version}};
  if (!t.device.gpu.empty()) j["device"]["gpu"] = t.device.gpu;
  j["settings"] = {{"warmup", t.settings.warmup},
                   {"repetitions", t.settings.repetitions},
                   {"trim", t.settings.trim},
                   {"statistic", t.settings.statistic},
                   {"min_sample_us", t.settings.min_sample_us}};
  nlohmann::ordered_json entries = nlohmann::ordered_json::object();
  for (const auto& [key, e] : t.entries) {
    nlohmann::ordered_json x = {
        {"ms", e.ms},           {"median_ms", e.median_ms},
        {"mean_ms", e.mean_ms}, {"min_ms", e.min_ms},
        {"max_ms", e.max_ms},   {"samples", e.samples},
        {"kind", e.kind},       {"measured_in", e.in_network ? "network" : "isolation"}};
    if (!e.steps.empty()) x["steps"] = e.steps;
    entries[key] = x;
  }
  j["entries"] = entries;
  if (t.calibration)
    j["calibration"] = {{"scale", t.calibration->scale}, {"ratios", t.calibration->ratios}};
  return j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void save_lut(const LatencyTable& t, const std::string& path) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << lut_to_json(t);
    out.flush();
    if (!out) throw UserError(tmp, "cannot write the latency table");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw UserError(path, "cannot replace the latency table: " + ec.message());
}

}  // namespace nas
