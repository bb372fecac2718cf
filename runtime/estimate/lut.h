// The latency lookup table (LUT): per-signature latencies measured once per device by
// `nasc profile`, read by `nasc estimate` and the searchers. One JSON file (format in
// docs/estimate.md) holding the device fingerprint, the measurement settings, the batch
// size the steps were measured at, and one entry per step or unit signature.
//
// Reading is strict: a file that is not JSON is a JsonSyntaxError at its line:col, JSON
// of the wrong shape a LutEntryError naming the file, the entry (its signature) when the
// problem is in one, and what is wrong. Writing is atomic (a temporary file in the same
// folder, then rename), so an interrupted profile leaves the last complete table.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/errors.h"

namespace nas {

// What the measurements depend on besides the signature.
struct DeviceFingerprint {
  std::string backend = "cpu";
  std::string cpu_model;
  int cores = 0;    // hardware threads the OS reports
  int threads = 0;  // threads the kernels used
  std::string onednn_version;
  // A GPU backend's device as its probe describes it: name, SMs, memory, compute
  // capability, driver, CUDA runtime and cuDNN versions; "" for the CPU backends.
  std::string gpu;
  bool operator==(const DeviceFingerprint& o) const {
    return backend == o.backend && cpu_model == o.cpu_model && cores == o.cores &&
           threads == o.threads && onednn_version == o.onednn_version && gpu == o.gpu;
  }
  bool operator!=(const DeviceFingerprint& o) const { return !(*this == o); }
  // "cpu, Intel(R) Xeon(R) ..., 2 cores, 1 thread, oneDNN 2.6.3 (N/A)", then "; GPU ..."
  std::string describe() const;
};

// This machine as backend `backend` sees it (the default backend when empty), with the
// current CPU thread count (runtime/cpu/threads.h) and, for a GPU backend, its GPU.
DeviceFingerprint current_device(const std::string& backend = "");

struct MeasureSettings {
  int warmup = 10;       // untimed runs before the samples
  int repetitions = 50;  // timed samples
  double trim = 0.1;     // fraction of samples dropped at each end (outliers)
  // The statistic `ms` holds: "min" (the default: on a shared machine noise only ever adds
  // time, so the fastest sample is the most repeatable), "median", or "trimmed_mean".
  std::string statistic = "min";
  double min_sample_us = 20;  // a sample repeats the work until it lasts this long
};

struct LutEntry {
  double ms = 0;  // the statistic the settings chose
  double median_ms = 0, mean_ms = 0, min_ms = 0, max_ms = 0;
  int samples = 0;
  std::string kind = "step";       // "step" or "unit"
  bool in_network = false;         // timed inside whole sub-network runs, not in isolation
  std::vector<std::string> steps;  // a unit's step signatures (for people)
};

// Whole networks timed at profile time against the table's own (uncalibrated) estimate of
// them. Isolated measurements miss what a whole run pays or saves (cache state between
// steps, the executor's own overhead), and the error is mostly one factor for a device:
// the estimator multiplies its latencies by `scale`, the median of the ratios.
struct LatencyCalibration {
  double scale = 1;
  std::vector<double> ratios;  // per network timed: measured / estimated
};

struct LatencyTable {
  static constexpr int kFormat = 1;
  DeviceFingerprint device;
  MeasureSettings settings;
  int64_t batch = 1;
  std::string network;  // the network it was profiled for (messages only)
  std::map<std::string, LutEntry> entries;
  std::optional<LatencyCalibration> calibration;  // from `nasc profile --calibrate N`
};

// The calibration of these ratios: their median as the scale. Precondition: non-empty.
LatencyCalibration calibration_from(std::vector<double> ratios);
// The largest correction a table may hold (either way): a ratio beyond it means the
// whole-network runs measured something else (another load on the machine, another
// thread count), not a bias of the estimate.
constexpr double kMaxCalibration = 4.0;

LatencyTable parse_lut(const std::string& text, const std::string& path);
LatencyTable load_lut(const std::string& path);  // also UserError when unreadable
std::string lut_to_json(const LatencyTable& t);
// Writes PATH.tmp then renames it over PATH. Throws UserError naming the file when it
// cannot.
void save_lut(const LatencyTable& t, const std::string& path);

}  // namespace nas
