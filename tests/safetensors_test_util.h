// Reads a weights file with tests/safetensors_reader.py, the independent reader of the
// safetensors specification (python3, standard library only), as a PyTorch user's
// safetensors.torch.load_file would read it without nasc.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/train/tensor_file.h"
#include "tests/file_test_util.h"

namespace nas::test {

struct PythonRead {
  int status = -1;        // the script's exit status: 0 read, 1 refused
  nlohmann::json result;  // its output when it read the file
  std::string err;
};

inline PythonRead read_with_python(const std::string& path) {
  const std::string out = path + ".py.json", err = path + ".py.err";
  const std::string cmd = "python3 '" NASC_SOURCE_DIR "/tests/safetensors_reader.py' '" + path +
                          "' > '" + out + "' 2> '" + err + "'";
  int raw = std::system(cmd.c_str());
  PythonRead r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.err = read_bytes(err);
  if (r.status == 0) r.result = nlohmann::json::parse(read_bytes(out));
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

// Whether the independent reader sees exactly `f`: every tensor's name, shape, dtype F32
// and bit pattern, and nasc's meta in the "nasc" metadata string. Returns "" or the
// first difference.
inline std::string python_sees(const std::string& path, const TensorFile& f) {
  PythonRead r = read_with_python(path);
  if (r.status != 0) return "the reader refused the file: " + r.err;
  const nlohmann::json& tensors = r.result["tensors"];
  if (tensors.size() != f.tensors.size())
    return "the reader sees " + std::to_string(tensors.size()) + " tensors, not " +
           std::to_string(f.tensors.size());
  for (const NamedTensor& t : f.tensors) {
    if (!tensors.contains(t.name)) return "the reader does not see '" + t.name + "'";
    const nlohmann::json& e = tensors[t.name];
    if (e["dtype"] != "F32" || e["shape"] != t.shape)
      return "'" + t.name + "' has dtype/shape " + e["dtype"].dump() + " " + e["shape"].dump();
    for (size_t i = 0; i < t.data.size(); ++i) {
      uint32_t bits;
      std::memcpy(&bits, &t.data[i], 4);
      if (e["bits"][i].get<uint32_t>() != bits)
        return "'" + t.name + "'[" + std::to_string(i) + "] differs";
    }
  }
  const nlohmann::json& m = r.result["metadata"];
  if (!m.contains("nasc") || nlohmann::json::parse(m["nasc"].get<std::string>()) != f.meta)
    return "the metadata's \"nasc\" entry is not the meta: " + m.dump();
  return "";
}

}  // namespace nas::test
