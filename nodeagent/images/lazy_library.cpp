// LazyLibrary (internal.h): dlopen on first use, for libcurl and libarchive.
#include <dlfcn.h>

#include "nodeagent/images/internal.h"

namespace berth::nodeagent::images::detail {

LazyLibrary::LazyLibrary(const char* soname, const char* name, const char* package) : name_(name) {
  handle_ = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!handle_) {
    const char* e = ::dlerror();
    error_ = "cannot load " + name_ + " (install the " + package + " package): " + (e ? e : soname);
  }
}

void* LazyLibrary::lookup(const char* symbol) {
  void* p = handle_ ? ::dlsym(handle_, symbol) : nullptr;
  if (!p && error_.empty()) error_ = name_ + " has no " + symbol;
  return p;
}

}  // namespace berth::nodeagent::images::detail
