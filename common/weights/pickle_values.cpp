// Reading what the restricted unpickler made (see torch_pickle.h): kind names, dict lookups and bounded JSON
// rendering of values (records as {"__class__": ..., fields...}). No official counterpart.
#include "common/weights/torch_pickle.h"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace moh::pickle {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::BigInt: return "big int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Record: return "object";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

namespace {

// JSON with a depth bound and a size budget (cycles and shared values cannot blow it up).
nlohmann::json json_of(const Value& v, int depth, size_t& budget) {
  using nlohmann::json;
  if (budget == 0 || depth <= 0) return "...";
  --budget;
  switch (v.kind) {
    case Kind::None: return nullptr;
    case Kind::Bool: return v.b;
    case Kind::Int: return v.i;
    case Kind::Float: return v.f;
    case Kind::Str: return v.s;
    case Kind::BigInt: return "<big int>";
    case Kind::Bytes: return "<" + std::to_string(v.s.size()) + " bytes>";
    case Kind::Global: return v.s;
    case Kind::Storage: return "<storage>";
    case Kind::Tensor: return "<tensor>";
    case Kind::Tuple:
    case Kind::List: {
      json a = json::array();
      for (const Value* x : v.items) a.push_back(json_of(*x, depth - 1, budget));
      return a;
    }
    case Kind::Dict: {
      json o = json::object();
      for (size_t i = 0; i + 1 < v.items.size(); i += 2) {
        const Value* k = v.items[i];
        const std::string key = k->kind == Kind::Str ? k->s : k->kind == Kind::Int ? std::to_string(k->i) : "<key>";
        o[key] = json_of(*v.items[i + 1], depth - 1, budget);
      }
      return o;
    }
    case Kind::Record: {
      // argparse.Namespace: NEWOBJ() + BUILD({fields}) -> the fields themselves.
      json o = json::object();
      o["__class__"] = v.s;
      if (!v.items.empty()) {
        json a = json::array();
        for (const Value* x : v.items) a.push_back(json_of(*x, depth - 1, budget));
        o["__args__"] = a;
      }
      if (v.state && v.state->kind == Kind::Dict) {
        for (size_t i = 0; i + 1 < v.state->items.size(); i += 2)
          if (v.state->items[i]->kind == Kind::Str && v.state->items[i]->s != "__class__")
            o[v.state->items[i]->s] = json_of(*v.state->items[i + 1], depth - 1, budget);
      } else if (v.state) {
        o["__state__"] = json_of(*v.state, depth - 1, budget);
      }
      return o;
    }
  }
  return nullptr;
}

}  // namespace

const Value* dict_get(const Value& d, const std::string& key) {
  if (d.kind != Kind::Dict) return nullptr;
  const Value* found = nullptr;
  for (size_t i = 0; i + 1 < d.items.size(); i += 2)
    if (d.items[i]->kind == Kind::Str && d.items[i]->s == key) found = d.items[i + 1];
  return found;
}

std::vector<std::string> dict_keys(const Value& d) {
  std::vector<std::string> out;
  if (d.kind != Kind::Dict) return out;
  std::map<std::string, bool> seen;
  for (size_t i = 0; i + 1 < d.items.size(); i += 2)
    if (d.items[i]->kind == Kind::Str && seen.emplace(d.items[i]->s, true).second) out.push_back(d.items[i]->s);
  return out;
}

std::string to_json(const Value& v, int max_depth, size_t max_chars) {
  size_t budget = max_chars / 4 + 1;
  std::string s = json_of(v, max_depth, budget).dump();
  return s.size() <= max_chars ? s : "\"<" + std::to_string(s.size()) + " characters, too large to keep>\"";
}

}  // namespace moh::pickle
