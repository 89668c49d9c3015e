// The entry points of a third-party part, loaded from a shared library (the C++ form of the
// seed's "add a path to the class to the config").
//
// Setting MODEL, STORAGE or MESSAGE_BUS to a path of a shared library (a value that contains a
// '/' or ends in ".so") makes the service dlopen() it and call the matching factory below, once,
// on first use. A plugin defines sra_plugin_abi_version() and the factory of each kind it
// provides, all `extern "C"`. The factory returns a new object that the service owns and deletes
// through the interface's virtual destructor; it may throw sra::Error (for example a config error
// that names a variable) and must not return null. The returned object must honour the threading
// promises of its interface (see model.h, file_storage.h, message_bus.h).
//
// The interfaces are C++ classes: build a plugin with the same compiler family and standard
// library as the service, against the headers of the same ABI version. The version below changes
// whenever an interface or Config changes in a way that breaks existing plugins; the service
// refuses a plugin that reports another one. The library stays loaded for the life of the process.
//
// A plugin declares its own variables as sra::Setting values (name, type, default, bounds, doc)
// and reads them with Config's getters that take a declaration (core/config.h).
#pragma once

#include <cstdint>

#include "core/config.h"
#include "core/file_storage.h"
#include "core/message_bus.h"
#include "core/model.h"

#define SRA_PLUGIN_ABI_VERSION 7u

extern "C" {
// Required: return SRA_PLUGIN_ABI_VERSION.
std::uint32_t sra_plugin_abi_version();
// Optional, one per kind provided. `config` lives as long as the process.
sra::Model* sra_create_model(const sra::Config* config);
sra::FileStorage* sra_create_file_storage(const sra::Config* config);
sra::MessageBus* sra_create_message_bus(const sra::Config* config);
}
