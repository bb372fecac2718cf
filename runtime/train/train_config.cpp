#include "runtime/train/train_config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "runtime/data/dataset.h"
#include "runtime/exec/exec_plan.h"
#include "runtime/optim/grad_accum.h"
#include "support/config_section.h"
#include "support/did_you_mean.h"
#include "support/errors.h"
#include "support/json_file.h"

namespace nas {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

std::vector<std::string> keys_of(const ordered_json& j) {
  std::vector<std::string> k;
  for (auto it = j.begin(); it != j.end(); ++it) k.push_back(it.key());
  return k;
}

void add_unique(std::vector<std::string>& to, const std::vector<std::string>& from) {
  for (const std::string& k : from)
    if (std::find(to.begin(), to.end(), k) == to.end()) to.push_back(k);
}

// Every key the optimizer parser accepts for some kind, derived from the to_json writer
// so the two cannot drift apart: misspelt keys get a did-you-mean here, while a key of
// the wrong kind (momentum for adam) is left to parse_optimizer_config's own message.
std::vector<std::string> all_optimizer_keys() {
  std::vector<std::string> keys;
  for (const char* name : {"sgd", "adam"}) {
    OptimizerConfig c;
    c.name = name;
    add_unique(keys, keys_of(optimizer_config_to_json(c)));
  }
  return keys;
}

std::vector<std::string> all_schedule_keys() {
  std::vector<std::string> keys;
  for (const char* name : {"constant", "cosine", "step", "warmup_cosine"}) {
    OptimizerConfig c;
    c.schedule.name = name;
    add_unique(keys, keys_of(optimizer_config_to_json(c)["schedule"]));
  }
  return keys;
}

json to_plain(const ordered_json& j) {
  return json::parse(j.dump());
}

const std::vector<std::string> kTopKeys = {
    "epochs",          "seed",           "threads",         "data",
    "optimizer",       "network",        "log_every",       "checkpoint_every",
    "label_smoothing", "drop_path_prob", "test_every_epoch"};
const std::vector<std::string> kDataKeys = {"name",
                                            "dir",
                                            "batch_size",
                                            "mini_batch",
                                            "eval_batch_size",
                                            "train_portion",
                                            "limit_train",
                                            "limit_test",
                                            "augment",
                                            "synthetic_samples",
                                            "synthetic_classes",
                                            "synthetic_shape"};
const std::vector<std::string> kAugmentKeys = {"crop_padding", "hflip", "cutout", "normalize",
                                               "random_erasing"};

constexpr double kMaxSyntheticBytes = 2147483648.0;

double synthetic_bytes(const DataConfig& d) {
  double bytes = static_cast<double>(d.synthetic_samples);
  for (int64_t s : d.synthetic_shape) bytes *= static_cast<double>(s);
  return bytes;
}

// A probability-like number in [0, 1): 1 would smooth every target to uniform (or drop
// every path), which no recipe means.
double get_below_one(const ConfigSection& section, const char* key, double def) {
  const double v = section.get_number(key, def, 0);
  if (!(v < 1)) section.fail(key, "must be in [0, 1), got " + config_number_text(v));
  return v;
}

// A [min, max] pair of finite numbers at `key`, both in [lo, hi] with min <= max; `rule`
// states that in the message.
std::pair<double, double> get_range(const ConfigSection& section, const char* key,
                                    std::pair<double, double> def, double lo, double hi,
                                    const char* rule) {
  const json* v = section.find(key);
  if (v == nullptr) return def;
  if (!v->is_array() || v->size() != 2)
    section.fail(key,
                 "expected [min, max], got " +
                     (v->is_array() ? "an array of " + std::to_string(v->size()) : json_kind(*v)));
  double ends[2];
  for (size_t k = 0; k < 2; ++k) {
    const json& e = (*v)[k];
    if (!e.is_number())
      throw ConfigError(section.file(), section.key_path(key) + "[" + std::to_string(k) + "]",
                        "expected a number, got " + json_kind(e));
    ends[k] = e.get<double>();
  }
  // lo itself is excluded: a share or ratio of 0 has no rectangle.
  if (!(ends[0] > lo && ends[0] <= ends[1] && ends[1] <= hi))
    section.fail(key, std::string("must satisfy ") + rule + ", got [" +
                          config_number_text(ends[0]) + ", " + config_number_text(ends[1]) + "]");
  return {ends[0], ends[1]};
}

// data.augment.random_erasing: present, erasing is on with torchvision's p = 0.5 unless
// "p" says otherwise (0 turns it off again).
RandomErasing parse_erasing(const ConfigSection& erasing) {
  erasing.check_keys({"p", "scale", "ratio", "value"});
  RandomErasing e;
  e.p = erasing.get_number("p", 0.5, 0, 1);
  std::tie(e.scale_min, e.scale_max) =
      get_range(erasing, "scale", {e.scale_min, e.scale_max}, 0, 1, "0 < min <= max <= 1");
  std::tie(e.ratio_min, e.ratio_max) =
      get_range(erasing, "ratio", {e.ratio_min, e.ratio_max}, 0, std::numeric_limits<double>::max(),
                "0 < min <= max");
  e.value = static_cast<float>(erasing.get_number("value", e.value, -1e30, 1e30));
  return e;
}

// The sections of a train config are read through ConfigSection
// (support/config_section.h), the strict reader every config shares: its errors name the
// file and the key path the same way everywhere.

DataConfig parse_data(const ConfigSection& data, const DataConfig& def) {
  const json& j = data.value();
  data.check_keys(kDataKeys);
  DataConfig d = def;
  d.name = data.get_string("name", def.name);
  const bool synthetic = d.name == "synthetic";
  if (d.name != "fashion-mnist" && d.name != "cifar10" && d.name != "npy" && d.name != "images" &&
      !synthetic)
    data.fail("name", "unknown data set \"" + d.name + "\"" +
                          did_you_mean_or_choices(
                              d.name, {"fashion-mnist", "cifar10", "npy", "images", "synthetic"}));
  if (synthetic) {
    if (j.contains("dir")) data.fail("dir", "not used with synthetic data");
    d.dir.clear();
  } else {
    for (const char* k : {"synthetic_samples", "synthetic_classes", "synthetic_shape"})
      if (j.contains(k))
        data.fail(k, "only for \"name\": \"synthetic\" (data.name is \"" + d.name + "\")");
    // The default folder belongs to Fashion-MNIST; switching the data set drops it.
    d.dir = data.get_string("dir", d.name == def.name ? def.dir : "");
    if (d.dir.empty() && d.name == "fashion-mnist") d.dir = kFashionMnistDir;
    if (d.dir.empty())
      data.fail("dir", d.name == "cifar10"
                           ? "required for cifar10: the folder holding data_batch_1.bin .. "
                             "test_batch.bin (or cifar-10-batches-bin/)"
                       : d.name == "npy"    ? "required for npy: the folder holding x.npy and y.npy"
                       : d.name == "images" ? "required for images: the folder of class sub-folders"
                                            : "required");
  }

  d.batch_size = data.get_int("batch_size", def.batch_size, 1);
  d.mini_batch = data.get_int("mini_batch", j.contains("batch_size") ? 0 : def.mini_batch, 0);
  if (d.mini_batch == 0) d.mini_batch = d.batch_size;
  if (d.batch_size % d.mini_batch != 0)
    data.fail("mini_batch", "must divide data.batch_size (" + std::to_string(d.batch_size) +
                                "), got " + std::to_string(d.mini_batch));
  accumulation_steps(d.batch_size, d.mini_batch);  // the trainer's own check: cannot fail now
  d.eval_batch_size = data.get_int("eval_batch_size", def.eval_batch_size, 1);
  if (auto it = j.find("train_portion"); it != j.end()) {
    if (!it->is_number()) data.fail("train_portion", "expected a number, got " + json_kind(*it));
    double v = it->get<double>();
    if (!(v > 0 && v <= 1))
      data.fail("train_portion", "must be in (0, 1], got " + config_number_text(v));
    d.train_portion = v;
  }
  d.limit_train = data.get_int("limit_train", def.limit_train, 0);
  d.limit_test = data.get_int("limit_test", def.limit_test, 0);

  if (auto it = j.find("augment"); it != j.end()) {
    const ConfigSection augment = data.section("augment");
    augment.check_keys(kAugmentKeys);
    d.augment.crop_padding =
        static_cast<int>(augment.get_int("crop_padding", def.augment.crop_padding, 0, 1024));
    d.augment.hflip = augment.get_bool("hflip", def.augment.hflip);
    d.augment.cutout = static_cast<int>(augment.get_int("cutout", def.augment.cutout, 0, 4096));
    d.normalize = augment.get_bool("normalize", def.normalize);
    if (augment.has("random_erasing"))
      d.augment.erasing = parse_erasing(augment.section("random_erasing"));
  }

  if (synthetic) {
    d.synthetic_samples = data.get_int("synthetic_samples", def.synthetic_samples, 1);
    d.synthetic_classes = data.get_int("synthetic_classes", def.synthetic_classes, 2, 1 << 20);
    if (auto it = j.find("synthetic_shape"); it != j.end()) {
      const std::string S = data.key_path("synthetic_shape");
      if (!it->is_array() || it->size() != 3)
        data.fail(
            "synthetic_shape",
            "expected [C, H, W], got " +
                (it->is_array() ? "an array of " + std::to_string(it->size()) : json_kind(*it)));
      d.synthetic_shape.clear();
      for (size_t k = 0; k < 3; ++k) {
        const json& e = (*it)[k];
        const std::string pk = S + "[" + std::to_string(k) + "]";
        if (!e.is_number_integer())
          throw ConfigError(data.file(), pk, "expected an integer, got " + json_kind(e));
        // Signed or unsigned alike: a config written back by train_config_to_json holds
        // signed integers.
        const bool in_range = e.is_number_unsigned()
                                  ? e.get<uint64_t>() >= 1 && e.get<uint64_t>() <= 65536
                                  : e.get<int64_t>() >= 1 && e.get<int64_t>() <= 65536;
        if (!in_range) throw ConfigError(data.file(), pk, "must be in [1, 65536], got " + e.dump());
        d.synthetic_shape.push_back(e.get<int64_t>());
      }
    }
    // make_synthetic keeps the whole set in memory as bytes; refuse what it would refuse.
    // Without a shape the network's is checked when it is known (resolve_synthetic_data).
    if (!d.synthetic_shape.empty() && synthetic_bytes(d) > kMaxSyntheticBytes)
      data.fail("synthetic_samples",
                std::to_string(d.synthetic_samples) + " samples of this shape need over 2 GiB");
  }
  return d;
}

OptimizerConfig parse_optimizer(const ConfigSection& optimizer, const OptimizerConfig& def) {
  const json& j = optimizer.value();
  const std::string& P = optimizer.path();
  const std::string& file = optimizer.file();
  optimizer.check_keys(all_optimizer_keys());
  if (auto it = j.find("schedule"); it != j.end() && it->is_object())
    optimizer.section("schedule").check_keys(all_schedule_keys());

  // Keys given for the default optimizer override its settings (so {"lr": 0.1} is enough);
  // naming another optimizer or schedule starts from that one's own defaults.
  json merged = j;
  std::set<std::string> from_default;
  const json base = to_plain(optimizer_config_to_json(def));
  if (!j.contains("name") || j["name"] == base["name"]) {
    merged = base;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "schedule" && it->is_object() &&
          (!it->contains("name") || (*it)["name"] == base["schedule"]["name"])) {
        for (auto s = it->begin(); s != it->end(); ++s) merged["schedule"][s.key()] = *s;
      } else {
        merged[it.key()] = *it;
      }
    }
    for (auto it = merged.begin(); it != merged.end(); ++it)
      if (!j.contains(it.key())) from_default.insert(it.key());
  }
  try {
    return parse_optimizer_config(merged, P, file);
  } catch (const ConfigError& e) {
    for (const std::string& k : from_default)
      if (e.key_path() == P + "." + k)
        throw ConfigError(file, e.key_path(),
                          e.message() + " (\"" + k +
                              "\" comes from the default optimizer settings; set it explicitly)");
    throw;
  }
}

bool is_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::vector<std::pair<std::string, std::string>> parse_network(const ConfigSection& network) {
  const json& j = network.value();
  std::vector<std::pair<std::string, std::string>> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string p = network.key_path(it.key());
    if (!is_identifier(it.key()))
      network.fail(it.key(),
                   "not a parameter name (letters, digits and _, not starting with a digit)");
    try {
      out.emplace_back(it.key(), json_to_nas_literal(*it, p));
    } catch (const ConfigError& e) {
      throw ConfigError(network.file(), e.key_path(), e.message());
    }
  }
  return out;
}

// Shortest text that reads back as the same double, always with a '.' so that .nas (and
// --set) see a float: 2 -> "2.0", 1e-05 -> "1.0e-05".
std::string float_literal(double v) {
  char b[40];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(b, sizeof b, "%.*g", prec, v);
    if (std::strtod(b, nullptr) == v) break;
  }
  std::string s = b;
  if (s.find('.') == std::string::npos) {
    size_t e = s.find('e');
    if (e == std::string::npos)
      s += ".0";
    else
      s.insert(e, ".0");
  }
  return s;
}

std::string literal(const json& v, const std::string& path, bool in_list, int depth) {
  if (depth > 100) throw ConfigError("", path, "lists nested more than 100 deep");
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw ConfigError("", path, "integer " + v.dump() + " is out of range");
    return std::to_string(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d)) throw ConfigError("", path, "not a finite number");
    return float_literal(d);
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    for (char c : s) {
      auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\' || u < 0x20 || u == 0x7f ||
          (in_list && (c == ',' || c == '[' || c == ']')))
        throw ConfigError("", path,
                          std::string("strings with quotes, backslashes or control characters") +
                              std::string(in_list ? " (or, in a list, commas and brackets)" : "") +
                              " cannot be passed to the network");
    }
    return "\"" + s + "\"";
  }
  if (v.is_array()) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i)
      s += (i ? ", " : "") + literal(v[i], path + "[" + std::to_string(i) + "]", true, depth + 1);
    return s + "]";
  }
  throw ConfigError("", path, "expected a number, string, boolean or list, got " + json_kind(v));
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

bool operator==(const DataConfig& a, const DataConfig& b) {
  return a.name == b.name && a.dir == b.dir && a.batch_size == b.batch_size &&
         a.mini_batch == b.mini_batch && a.eval_batch_size == b.eval_batch_size &&
         a.train_portion == b.train_portion && a.limit_train == b.limit_train &&
         a.limit_test == b.limit_test && a.augment.mean == b.augment.mean &&
         a.augment.std == b.augment.std && a.augment.crop_padding == b.augment.crop_padding &&
         a.augment.hflip == b.augment.hflip && a.augment.cutout == b.augment.cutout &&
         a.augment.erasing == b.augment.erasing && a.normalize == b.normalize &&
         a.synthetic_samples == b.synthetic_samples && a.synthetic_classes == b.synthetic_classes &&
         a.synthetic_shape == b.synthetic_shape;
}

bool operator==(const TrainConfig& a, const TrainConfig& b) {
  // The optimizer is compared through its JSON form, which holds exactly the fields that
  // apply to its kind (an sgd config's unused betas do not matter).
  return a.epochs == b.epochs && a.seed == b.seed && a.threads == b.threads && a.data == b.data &&
         optimizer_config_to_json(a.optimizer) == optimizer_config_to_json(b.optimizer) &&
         a.network == b.network && a.log_every == b.log_every &&
         a.checkpoint_every == b.checkpoint_every && a.label_smoothing == b.label_smoothing &&
         a.drop_path_prob == b.drop_path_prob && a.test_every_epoch == b.test_every_epoch;
}

TrainConfig default_train_config() {
  TrainConfig c;
  c.data.dir = kFashionMnistDir;
  c.data.mini_batch = c.data.batch_size;
  OptimizerConfig& o = c.optimizer;
  o.name = "sgd";
  o.lr = 0.05;
  o.momentum = 0.9;
  o.nesterov = true;
  o.weight_decay = 3e-4;
  o.grad_clip = 5;
  o.schedule.name = "cosine";
  o.schedule.unit = "epoch";
  o.schedule.eta_min = 0;
  return c;
}

TrainConfig parse_train_config(const json& j, const std::string& path_for_messages) {
  if (!j.is_object())
    throw ConfigError(path_for_messages, "",
                      "expected a JSON object at the top level, got " + json_kind(j));
  const ConfigSection top(j, path_for_messages, "");
  top.check_keys(kTopKeys);
  TrainConfig c = default_train_config();
  c.epochs = top.get_int("epochs", c.epochs, 1);
  if (const json* seed = top.find("seed")) {
    if (!seed->is_number_integer())
      top.fail("seed", "expected an integer, got " + json_kind(*seed));
    if (!seed->is_number_unsigned()) top.fail("seed", "must be >= 0, got " + seed->dump());
    c.seed = seed->get<uint64_t>();
  }
  c.threads = static_cast<int>(top.get_int("threads", c.threads, 0, 65536));
  c.log_every = top.get_int("log_every", c.log_every, 1);
  c.checkpoint_every = top.get_int("checkpoint_every", c.checkpoint_every, 1);
  c.label_smoothing = get_below_one(top, "label_smoothing", c.label_smoothing);
  c.drop_path_prob = get_below_one(top, "drop_path_prob", c.drop_path_prob);
  c.test_every_epoch = top.get_bool("test_every_epoch", c.test_every_epoch);
  if (top.has("data")) c.data = parse_data(top.section("data"), c.data);
  if (top.has("optimizer")) c.optimizer = parse_optimizer(top.section("optimizer"), c.optimizer);
  if (top.has("network")) c.network = parse_network(top.section("network"));
  c.source = path_for_messages;
  return c;
}

void resolve_synthetic_data(DataConfig& d, const std::vector<int64_t>& input_shape, int64_t classes,
                            const std::string& source) {
  if (d.name != "synthetic") return;
  if (input_shape.size() != 3)
    throw UserError(source.empty() ? "data" : source + ": data",
                    "synthetic data are images [C, H, W], but the network's input is " +
                        shape_text(input_shape));
  if (d.synthetic_shape.empty()) {
    d.synthetic_shape = input_shape;
  } else if (d.synthetic_shape != input_shape) {
    throw ConfigError(source, "data.synthetic_shape",
                      shape_text(d.synthetic_shape) + " does not match the network's input " +
                          shape_text(input_shape) + "; remove the key to use the network's shape");
  }
  if (d.synthetic_classes == 0) {
    if (classes < 2)
      throw UserError(source.empty() ? "data" : source + ": data",
                      "synthetic data need at least 2 classes, but the network returns " +
                          std::to_string(classes) + " logit");
    d.synthetic_classes = classes;
  } else if (d.synthetic_classes > classes) {
    throw ConfigError(source, "data.synthetic_classes",
                      std::to_string(d.synthetic_classes) +
                          " classes, but the network returns only " + std::to_string(classes) +
                          " logits; remove the key to use one class per logit");
  }
  if (synthetic_bytes(d) > kMaxSyntheticBytes)
    throw ConfigError(source, "data.synthetic_samples",
                      std::to_string(d.synthetic_samples) + " samples of " +
                          shape_text(d.synthetic_shape) + " need over 2 GiB");
}

TrainConfig load_train_config(const std::string& file) {
  return parse_train_config(read_json_file(file), file);
}

ordered_json train_config_to_json(const TrainConfig& c) {
  ordered_json j;
  j["epochs"] = c.epochs;
  j["seed"] = c.seed;
  j["threads"] = c.threads;
  const DataConfig& d = c.data;
  ordered_json dj;
  dj["name"] = d.name;
  if (d.name != "synthetic")
    dj["dir"] = d.dir.empty() && d.name == "fashion-mnist" ? kFashionMnistDir : d.dir;
  dj["batch_size"] = d.batch_size;
  dj["mini_batch"] = d.effective_mini_batch();
  dj["eval_batch_size"] = d.eval_batch_size;
  dj["train_portion"] = d.train_portion;
  dj["limit_train"] = d.limit_train;
  dj["limit_test"] = d.limit_test;
  dj["augment"] = {{"crop_padding", d.augment.crop_padding},
                   {"hflip", d.augment.hflip},
                   {"cutout", d.augment.cutout},
                   {"normalize", d.normalize}};
  const RandomErasing& e = d.augment.erasing;
  dj["augment"]["random_erasing"] = {{"p", e.p},
                                     {"scale", {e.scale_min, e.scale_max}},
                                     {"ratio", {e.ratio_min, e.ratio_max}},
                                     {"value", e.value}};
  if (d.name == "synthetic") {
    // Unset ones stay unset: they mean "the network's", whatever network comes next.
    dj["synthetic_samples"] = d.synthetic_samples;
    if (d.synthetic_classes > 0) dj["synthetic_classes"] = d.synthetic_classes;
    if (!d.synthetic_shape.empty()) dj["synthetic_shape"] = d.synthetic_shape;
  }
  j["data"] = std::move(dj);
  j["optimizer"] = optimizer_config_to_json(c.optimizer);
  ordered_json nj = ordered_json::object();
  for (const auto& [name, value] : c.network)
    nj[name] = ordered_json::parse(nas_literal_to_json(value).dump());
  j["network"] = std::move(nj);
  j["log_every"] = c.log_every;
  j["checkpoint_every"] = c.checkpoint_every;
  j["label_smoothing"] = c.label_smoothing;
  j["drop_path_prob"] = c.drop_path_prob;
  j["test_every_epoch"] = c.test_every_epoch;
  return j;
}

std::string json_to_nas_literal(const json& v, const std::string& path) {
  return literal(v, path, false, 0);
}

json nas_literal_to_json(const std::string& text) {
  // Mirrors the --set value parser (Elaborator::parse_override), so that a value reads
  // back as the type the network will see.
  std::string t = trim(text);
  if (t == "true" || t == "false") return t == "true";
  if (!t.empty() && t.front() == '[' && t.back() == ']') {
    json items = json::array();
    std::string item;
    int depth = 0;
    for (char ch : t.substr(1, t.size() - 2) + ",") {
      if (ch == ',' && depth == 0) {
        if (!trim(item).empty()) items.push_back(nas_literal_to_json(item));
        item.clear();
        continue;
      }
      depth += (ch == '[') - (ch == ']');
      item += ch;
    }
    return items;
  }
  if (!t.empty()) {
    char* end = nullptr;
    errno = 0;
    long long i = std::strtoll(t.c_str(), &end, 10);
    if (*end == 0 && errno == 0) return static_cast<int64_t>(i);
    double d = std::strtod(t.c_str(), &end);
    if (*end == 0 && std::isfinite(d)) return d;
  }
  if (t.size() >= 2 && t.front() == '"' && t.back() == '"') t = t.substr(1, t.size() - 2);
  return t;
}

}  // namespace nas
