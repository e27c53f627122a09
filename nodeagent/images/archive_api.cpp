// archive_api() (archive_api.h): libarchive's functions, resolved on first use.
#include "nodeagent/images/archive_api.h"

namespace berth::nodeagent::images::detail {

namespace {

ArchiveApi load_archive() {
  ArchiveApi a;
  LazyLibrary lib("libarchive.so.13", "libarchive", "libarchive13");
#define BERTH_ARCHIVE_BIND(f) lib.bind(a.p_##f, #f);
  BERTH_ARCHIVE_FUNCTIONS(BERTH_ARCHIVE_BIND)
#undef BERTH_ARCHIVE_BIND
  a.error = lib.error();
  return a;
}

}  // namespace

const ArchiveApi& archive_api() {
  static const ArchiveApi api = load_archive();
  return api;
}

}  // namespace berth::nodeagent::images::detail
