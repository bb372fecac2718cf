#include "runtime/estimate/lut.h"

#include <fmt/format.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "runtime/cpu/threads.h"

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

// Typed field access with messages that name the file and the key.
struct Reader {
  const std::string& path;
  [[noreturn]] void fail(const std::string& what) const {
    throw LutError("latency table " + path + ": " + what);
  }
  const Json& field(const Json& obj, const std::string& key, const std::string& where) const {
    auto it = obj.find(key);
    if (it == obj.end()) fail(where + "has no \"" + key + "\"");
    return *it;
  }
  std::string str(const Json& obj, const std::string& key, const std::string& where) const {
    const Json& v = field(obj, key, where);
    if (!v.is_string()) fail(where + "\"" + key + "\" must be a string");
    return v.get<std::string>();
  }
  int64_t integer(const Json& obj, const std::string& key, const std::string& where, int64_t lo,
                  int64_t hi) const {
    const Json& v = field(obj, key, where);
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      fail(fmt::format("{}\"{}\" must be an integer in {}..{}, got {}", where, key, lo, hi,
                       v.dump()));
    return v.get<int64_t>();
  }
  double number(const Json& obj, const std::string& key, const std::string& where, double lo,
                double hi) const {
    const Json& v = field(obj, key, where);
    if (!v.is_number() || !(v.get<double>() >= lo) || !(v.get<double>() <= hi))
      fail(
          fmt::format("{}\"{}\" must be a number in {}..{}, got {}", where, key, lo, hi, v.dump()));
    return v.get<double>();
  }
};

}  // namespace

std::string DeviceFingerprint::describe() const {
  return fmt::format("{}, {}, {} cores, {} thread{}, oneDNN {}", backend, cpu_model, cores, threads,
                     threads == 1 ? "" : "s", onednn_version);
}

DeviceFingerprint current_device() {
  DeviceFingerprint d;
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
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    std::string what = e.what();
    size_t p = what.find("parse error");
    r.fail("not valid JSON (" + (p == std::string::npos ? what : what.substr(p)) + ")");
  }
  if (!j.is_object()) r.fail("the top level must be an object");
  LatencyTable t;
  int64_t format = r.integer(j, "format", "the table ", 1, 1000);
  if (format != LatencyTable::kFormat)
    r.fail(fmt::format("format {} is not supported (this nasc reads format {})", format,
                       LatencyTable::kFormat));
  t.batch = r.integer(j, "batch", "the table ", 1, 1 << 20);
  if (j.contains("network")) t.network = r.str(j, "network", "the table ");
  const Json& dev = r.field(j, "device", "the table ");
  if (!dev.is_object()) r.fail("\"device\" must be an object");
  t.device.backend = r.str(dev, "backend", "\"device\" ");
  t.device.cpu_model = r.str(dev, "cpu_model", "\"device\" ");
  t.device.cores = static_cast<int>(r.integer(dev, "cores", "\"device\" ", 0, 1 << 20));
  t.device.threads = static_cast<int>(r.integer(dev, "threads", "\"device\" ", 0, 1 << 20));
  t.device.onednn_version = r.str(dev, "onednn_version", "\"device\" ");
  const Json& set = r.field(j, "settings", "the table ");
  if (!set.is_object()) r.fail("\"settings\" must be an object");
  t.settings.warmup = static_cast<int>(r.integer(set, "warmup", "\"settings\" ", 0, 1000000));
  t.settings.repetitions =
      static_cast<int>(r.integer(set, "repetitions", "\"settings\" ", 1, 1000000));
  t.settings.trim = r.number(set, "trim", "\"settings\" ", 0, 0.49);
  std::string stat = r.str(set, "statistic", "\"settings\" ");
  if (stat != "min" && stat != "median" && stat != "trimmed_mean")
    r.fail("\"settings\" \"statistic\" must be \"min\", \"median\" or \"trimmed_mean\", got \"" +
           stat + "\"");
  t.settings.statistic = stat;
  t.settings.min_sample_us = r.number(set, "min_sample_us", "\"settings\" ", 0, 1e7);
  const Json& entries = r.field(j, "entries", "the table ");
  if (!entries.is_object()) r.fail("\"entries\" must be an object keyed by signature");
  for (const auto& [key, e] : entries.items()) {
    std::string where = "entry \"" + key + "\" ";
    if (!e.is_object()) r.fail(where + "must be an object");
    LutEntry le;
    le.ms = r.number(e, "ms", where, 0, 1e9);
    le.median_ms = r.number(e, "median_ms", where, 0, 1e9);
    le.mean_ms = r.number(e, "mean_ms", where, 0, 1e9);
    le.min_ms = r.number(e, "min_ms", where, 0, 1e9);
    le.max_ms = r.number(e, "max_ms", where, 0, 1e9);
    le.samples = static_cast<int>(r.integer(e, "samples", where, 1, 1000000));
    le.kind = e.contains("kind") ? r.str(e, "kind", where) : "step";
    if (le.kind != "step" && le.kind != "unit")
      r.fail(where + "\"kind\" must be \"step\" or \"unit\", got \"" + le.kind + "\"");
    if (e.contains("measured_in")) {
      std::string how = r.str(e, "measured_in", where);
      if (how != "network" && how != "isolation")
        r.fail(where + "\"measured_in\" must be \"network\" or \"isolation\", got \"" + how + "\"");
      le.in_network = how == "network";
    }
    if (e.contains("steps")) {
      const Json& s = e["steps"];
      if (!s.is_array()) r.fail(where + "\"steps\" must be a list of signatures");
      for (const Json& x : s) {
        if (!x.is_string()) r.fail(where + "\"steps\" must be a list of signatures");
        le.steps.push_back(x.get<std::string>());
      }
    }
    t.entries.emplace(key, std::move(le));
  }
  return t;
}

LatencyTable load_lut(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LutError("cannot read latency table " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_lut(ss.str(), path);
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
  return j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void save_lut(const LatencyTable& t, const std::string& path) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << lut_to_json(t);
    out.flush();
    if (!out) throw LutError("cannot write latency table " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw LutError("cannot replace latency table " + path + ": " + ec.message());
}

}  // namespace nas
