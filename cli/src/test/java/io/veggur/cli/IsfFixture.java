package io.veggur.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.veggur.vmi.os.linux.KernelProfile;
import io.veggur.vmi.os.linux.LinuxKernel;
import java.io.IOException;
import java.io.OutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.zip.GZIPOutputStream;

/** Writes a minimal Volatility 3 ISF file (gzip) describing a discovered kernel, in dwarf2json's shapes. */
final class IsfFixture {
    private static final long LINK_TIME_TEXT = 0xffff_ffff_8100_0000L;

    private IsfFixture() {}

    static void write(LinuxKernel kernel, Path file) throws IOException {
        KernelProfile p = kernel.profile();
        ObjectNode root = Json.MAPPER.createObjectNode();
        root.putObject("metadata").putObject("format").put("version", "6.2.0");
        root.putObject("base_types");
        root.putObject("enums");
        ObjectNode types = root.putObject("user_types");
        KernelProfile.TaskLayout t = p.task();
        ObjectNode task = struct(types, "task_struct", t.size());
        // pid and tgid live in an anonymous struct, as in randomized layouts.
        int anonymous = Math.min(t.pid(), t.tgid());
        ObjectNode ids = struct(types, "unnamed_8f2a", 8);
        field(ids, "pid", t.pid() - anonymous, base("int"));
        field(ids, "tgid", t.tgid() - anonymous, base("int"));
        field(task, "unnamed_field_0", anonymous, named("struct", "unnamed_8f2a"));
        field(task, "tasks", t.tasks(), named("struct", "list_head"));
        field(task, "comm", t.comm(), Json.MAPPER.createObjectNode().put("kind", "array").put("count", t.commLength())
                .set("subtype", base("char")));
        field(task, "real_parent", t.realParent(), pointer());
        field(task, "real_cred", t.realCred(), pointer());
        field(task, "mm", t.mm(), pointer());
        field(task, "flags", t.flags(), base("unsigned int"));
        field(task, t.stateSize() == 4 ? "__state" : "state", t.state(), base("unsigned int"));
        field(task, "exit_state", t.exitState(), base("int"));
        field(task, "signal", t.signal(), pointer());
        field(task, "thread_node", t.threadNode(), named("struct", "list_head"));
        ObjectNode kuid = struct(types, "kuid_t", 4);
        field(kuid, "val", 0, base("unsigned int"));
        field(struct(types, "cred", 0), "uid", p.credUid(), named("struct", "kuid_t"));
        field(struct(types, "mm_struct", 0), "pgd", p.mmPgd(), pointer());
        field(struct(types, "signal_struct", 0), "thread_head", p.signalThreadHead(), named("struct", "list_head"));
        KernelProfile.ModuleLayout m = p.module();
        ObjectNode module = struct(types, "module", 0);
        field(module, "list", m.list(), named("struct", "list_head"));
        field(module, "name", m.name(), Json.MAPPER.createObjectNode().put("kind", "array").put("count", m.nameLength())
                .set("subtype", base("char")));
        if (m.memCount() < 0) {
            ObjectNode layout = struct(types, "module_layout", 0);
            field(layout, "base", 0, pointer());
            field(layout, "size", m.coreSize() - m.coreBase(), base("unsigned int"));
            field(module, "core_layout", m.coreBase(), named("struct", "module_layout"));
            field(module, "init_layout", m.initSize() - (m.coreSize() - m.coreBase()), named("struct", "module_layout"));
        } else {
            ObjectNode memory = struct(types, "module_memory", m.memStride());
            field(memory, "base", m.memBase(), pointer());
            field(memory, "size", m.memSize(), base("unsigned int"));
            field(module, "mem", m.mem(), Json.MAPPER.createObjectNode().put("kind", "array").put("count", m.memCount())
                    .set("subtype", named("struct", "module_memory")));
        }
        KernelProfile.Symbols s = p.symbols();
        ObjectNode symbols = root.putObject("symbols");
        symbol(symbols, "_text", 0);
        symbol(symbols, "init_task", s.initTask());
        symbol(symbols, "modules", s.modules());
        symbol(symbols, "init_top_pgt", s.initTopPgt());
        symbol(symbols, "linux_banner", s.linuxBanner()).put("constant_data",
                Base64.getEncoder().encodeToString((p.banner() + "\n\0").getBytes(StandardCharsets.UTF_8)));
        symbol(symbols, "__start_notes", s.startNotes());
        symbol(symbols, "__stop_notes", s.stopNotes());
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(file))) {
            Json.MAPPER.writeValue(out, root);
        }
    }

    private static ObjectNode struct(ObjectNode types, String name, int size) {
        return types.putObject(name).put("kind", "struct").put("size", size).putObject("fields");
    }

    private static void field(ObjectNode fields, String name, long offset, ObjectNode type) {
        fields.putObject(name).put("offset", offset).set("type", type);
    }

    private static ObjectNode base(String name) {
        return Json.MAPPER.createObjectNode().put("kind", "base").put("name", name);
    }

    private static ObjectNode named(String kind, String name) {
        return Json.MAPPER.createObjectNode().put("kind", kind).put("name", name);
    }

    private static ObjectNode pointer() {
        return Json.MAPPER.createObjectNode().put("kind", "pointer").set("subtype", base("void"));
    }

    private static ObjectNode symbol(ObjectNode symbols, String name, long offsetFromText) {
        return symbols.putObject(name).put("address", new BigInteger(Long.toUnsignedString(LINK_TIME_TEXT + offsetFromText)));
    }
}
