// libarchive for layers.cpp and builtin.cpp, loaded on first use instead of being linked (see
// LazyLibrary in internal.h): with ICU, libxml2, nettle, libacl and the compressors it needs, it
// was 2 MB of an idle agent's 16 MB RSS. Include this instead of <archive.h>: afterwards the
// functions below are called by their usual names, through the table archive_api() fills on
// its first call (thread-safe, once). Call archive_ready() before the first of them.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "nodeagent/images/internal.h"

// Every libarchive function the agent calls; a new one is added here and to the #defines at the end.
#define BERTH_ARCHIVE_FUNCTIONS(X) \
  X(archive_entry_filetype) \
  X(archive_entry_free) \
  X(archive_entry_hardlink) \
  X(archive_entry_mtime) \
  X(archive_entry_new) \
  X(archive_entry_pathname) \
  X(archive_entry_set_filetype) \
  X(archive_entry_set_gid) \
  X(archive_entry_set_hardlink) \
  X(archive_entry_set_mtime) \
  X(archive_entry_set_pathname) \
  X(archive_entry_set_perm) \
  X(archive_entry_set_rdev) \
  X(archive_entry_set_size) \
  X(archive_entry_set_symlink) \
  X(archive_entry_set_uid) \
  X(archive_entry_size) \
  X(archive_entry_xattr_add_entry) \
  X(archive_entry_xattr_clear) \
  X(archive_entry_xattr_count) \
  X(archive_entry_xattr_next) \
  X(archive_entry_xattr_reset) \
  X(archive_error_string) \
  X(archive_read_data) \
  X(archive_read_data_block) \
  X(archive_read_free) \
  X(archive_read_new) \
  X(archive_read_next_header) \
  X(archive_read_open) \
  X(archive_read_open_filename) \
  X(archive_read_support_filter_bzip2) \
  X(archive_read_support_filter_gzip) \
  X(archive_read_support_filter_xz) \
  X(archive_read_support_filter_zstd) \
  X(archive_read_support_format_raw) \
  X(archive_read_support_format_tar) \
  X(archive_write_close) \
  X(archive_write_data) \
  X(archive_write_data_block) \
  X(archive_write_disk_new) \
  X(archive_write_disk_set_options) \
  X(archive_write_finish_entry) \
  X(archive_write_free) \
  X(archive_write_header) \
  X(archive_write_new) \
  X(archive_write_open) \
  X(archive_write_set_format_pax_restricted)

namespace berth::nodeagent::images::detail {

struct ArchiveApi {
  std::string error;  // empty when libarchive and every function were found
#define BERTH_ARCHIVE_MEMBER(f) decltype(&::f) p_##f = nullptr;
  BERTH_ARCHIVE_FUNCTIONS(BERTH_ARCHIVE_MEMBER)
#undef BERTH_ARCHIVE_MEMBER
};

// Loads libarchive.so.13 on the first call.
const ArchiveApi& archive_api();

// OK, or why libarchive cannot be used (dlerror's text).
inline api::Status archive_ready() {
  const std::string& e = archive_api().error;
  return e.empty() ? api::Status() : api::Status(api::Reason::InternalError, e);
}

}  // namespace berth::nodeagent::images::detail

#define BERTH_ARCHIVE_CALL(f) (::berth::nodeagent::images::detail::archive_api().p_##f)
#define archive_entry_filetype BERTH_ARCHIVE_CALL(archive_entry_filetype)
#define archive_entry_free BERTH_ARCHIVE_CALL(archive_entry_free)
#define archive_entry_hardlink BERTH_ARCHIVE_CALL(archive_entry_hardlink)
#define archive_entry_mtime BERTH_ARCHIVE_CALL(archive_entry_mtime)
#define archive_entry_new BERTH_ARCHIVE_CALL(archive_entry_new)
#define archive_entry_pathname BERTH_ARCHIVE_CALL(archive_entry_pathname)
#define archive_entry_set_filetype BERTH_ARCHIVE_CALL(archive_entry_set_filetype)
#define archive_entry_set_gid BERTH_ARCHIVE_CALL(archive_entry_set_gid)
#define archive_entry_set_hardlink BERTH_ARCHIVE_CALL(archive_entry_set_hardlink)
#define archive_entry_set_mtime BERTH_ARCHIVE_CALL(archive_entry_set_mtime)
#define archive_entry_set_pathname BERTH_ARCHIVE_CALL(archive_entry_set_pathname)
#define archive_entry_set_perm BERTH_ARCHIVE_CALL(archive_entry_set_perm)
#define archive_entry_set_rdev BERTH_ARCHIVE_CALL(archive_entry_set_rdev)
#define archive_entry_set_size BERTH_ARCHIVE_CALL(archive_entry_set_size)
#define archive_entry_set_symlink BERTH_ARCHIVE_CALL(archive_entry_set_symlink)
#define archive_entry_set_uid BERTH_ARCHIVE_CALL(archive_entry_set_uid)
#define archive_entry_size BERTH_ARCHIVE_CALL(archive_entry_size)
#define archive_entry_xattr_add_entry BERTH_ARCHIVE_CALL(archive_entry_xattr_add_entry)
#define archive_entry_xattr_clear BERTH_ARCHIVE_CALL(archive_entry_xattr_clear)
#define archive_entry_xattr_count BERTH_ARCHIVE_CALL(archive_entry_xattr_count)
#define archive_entry_xattr_next BERTH_ARCHIVE_CALL(archive_entry_xattr_next)
#define archive_entry_xattr_reset BERTH_ARCHIVE_CALL(archive_entry_xattr_reset)
#define archive_error_string BERTH_ARCHIVE_CALL(archive_error_string)
#define archive_read_data BERTH_ARCHIVE_CALL(archive_read_data)
#define archive_read_data_block BERTH_ARCHIVE_CALL(archive_read_data_block)
#define archive_read_free BERTH_ARCHIVE_CALL(archive_read_free)
#define archive_read_new BERTH_ARCHIVE_CALL(archive_read_new)
#define archive_read_next_header BERTH_ARCHIVE_CALL(archive_read_next_header)
#define archive_read_open BERTH_ARCHIVE_CALL(archive_read_open)
#define archive_read_open_filename BERTH_ARCHIVE_CALL(archive_read_open_filename)
#define archive_read_support_filter_bzip2 BERTH_ARCHIVE_CALL(archive_read_support_filter_bzip2)
#define archive_read_support_filter_gzip BERTH_ARCHIVE_CALL(archive_read_support_filter_gzip)
#define archive_read_support_filter_xz BERTH_ARCHIVE_CALL(archive_read_support_filter_xz)
#define archive_read_support_filter_zstd BERTH_ARCHIVE_CALL(archive_read_support_filter_zstd)
#define archive_read_support_format_raw BERTH_ARCHIVE_CALL(archive_read_support_format_raw)
#define archive_read_support_format_tar BERTH_ARCHIVE_CALL(archive_read_support_format_tar)
#define archive_write_close BERTH_ARCHIVE_CALL(archive_write_close)
#define archive_write_data BERTH_ARCHIVE_CALL(archive_write_data)
#define archive_write_data_block BERTH_ARCHIVE_CALL(archive_write_data_block)
#define archive_write_disk_new BERTH_ARCHIVE_CALL(archive_write_disk_new)
#define archive_write_disk_set_options BERTH_ARCHIVE_CALL(archive_write_disk_set_options)
#define archive_write_finish_entry BERTH_ARCHIVE_CALL(archive_write_finish_entry)
#define archive_write_free BERTH_ARCHIVE_CALL(archive_write_free)
#define archive_write_header BERTH_ARCHIVE_CALL(archive_write_header)
#define archive_write_new BERTH_ARCHIVE_CALL(archive_write_new)
#define archive_write_open BERTH_ARCHIVE_CALL(archive_write_open)
#define archive_write_set_format_pax_restricted BERTH_ARCHIVE_CALL(archive_write_set_format_pax_restricted)
