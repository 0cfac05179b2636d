package io.veggur.vmi.symbols.btf;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code bpftool btf dump file F format raw}, read back as an independent account of a BTF blob: every type's kind,
 * name, size or referenced type, and every struct/union member's type id, bit offset and bitfield size.
 */
final class BpftoolRawDump {
    record TypeLine(int id, String kind, String name, long size, int typeId) {}

    record MemberLine(String name, int typeId, long bitsOffset, int bitfieldSize) {}

    private static final Pattern TYPE = Pattern.compile("^\\[(\\d+)] (\\w+) '([^']*)'(.*)$");
    private static final Pattern MEMBER =
            Pattern.compile("^\\t'([^']*)' type_id=(\\d+) bits_offset=(\\d+)(?: bitfield_size=(\\d+))?$");
    private static final Pattern ENUMERATOR = Pattern.compile("^\\t'([^']*)' val=(-?\\d+)\\w*$");
    private static final Pattern SIZE = Pattern.compile(" size=(\\d+)");
    private static final Pattern TYPE_ID = Pattern.compile(" type_id=(\\d+)");
    private static final Set<String> MODIFIERS = Set.of("TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG");

    final Map<Integer, TypeLine> types = new HashMap<>();
    final Map<Integer, List<MemberLine>> members = new HashMap<>();
    final Map<Integer, Map<String, Long>> enumerators = new HashMap<>();
    /** Lowest id for each (kind, name), as Btf.typeId promises. */
    final Map<String, Integer> firstByKindAndName = new LinkedHashMap<>();
    int lastId;

    static boolean available() {
        try {
            Process p = new ProcessBuilder("bpftool", "version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    static BpftoolRawDump of(Path btfFile) throws IOException, InterruptedException {
        Path out = Files.createTempFile("bpftool-raw", ".txt");
        try {
            Process p = new ProcessBuilder("bpftool", "btf", "dump", "file", btfFile.toString(), "format", "raw")
                    .redirectOutput(out.toFile())
                    .redirectError(ProcessBuilder.Redirect.DISCARD)
                    .start();
            if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new IOException("bpftool btf dump of " + btfFile + " failed");
            }
            BpftoolRawDump dump = new BpftoolRawDump();
            try (BufferedReader in = new BufferedReader(
                    new InputStreamReader(Files.newInputStream(out), StandardCharsets.UTF_8))) {
                dump.read(in);
            }
            return dump;
        } finally {
            Files.deleteIfExists(out);
        }
    }

    private void read(BufferedReader in) throws IOException {
        int current = 0;
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            Matcher type = TYPE.matcher(line);
            if (type.matches()) {
                current = Integer.parseInt(type.group(1));
                String name = type.group(3).equals("(anon)") ? "" : type.group(3);
                Matcher size = SIZE.matcher(type.group(4));
                Matcher typeId = TYPE_ID.matcher(type.group(4));
                types.put(current, new TypeLine(current, type.group(2), name,
                        size.find() ? Long.parseLong(size.group(1)) : -1,
                        typeId.find() ? Integer.parseInt(typeId.group(1)) : -1));
                firstByKindAndName.putIfAbsent(type.group(2) + " " + name, current);
                lastId = current;
                continue;
            }
            Matcher member = MEMBER.matcher(line);
            if (member.matches()) {
                members.computeIfAbsent(current, k -> new ArrayList<>()).add(new MemberLine(
                        member.group(1).equals("(anon)") ? "" : member.group(1),
                        Integer.parseInt(member.group(2)),
                        Long.parseLong(member.group(3)),
                        member.group(4) == null ? 0 : Integer.parseInt(member.group(4))));
                continue;
            }
            Matcher enumerator = ENUMERATOR.matcher(line);
            if (enumerator.matches()) {
                String value = enumerator.group(2);
                enumerators.computeIfAbsent(current, k -> new LinkedHashMap<>()).putIfAbsent(enumerator.group(1),
                        value.startsWith("-") ? Long.parseLong(value) : Long.parseUnsignedLong(value));
            }
        }
    }

    /** {@code id} with typedefs and qualifiers followed, as bpftool lists them. */
    int strip(int id) {
        for (int depth = 0; depth < 100 && id != 0 && MODIFIERS.contains(types.get(id).kind()); depth++) {
            id = types.get(id).typeId();
        }
        return id;
    }

    /**
     * Every member name reachable from composite {@code id}, directly or through anonymous structs and unions, with
     * its bit offset from the start of {@code id}, first occurrence kept.
     */
    Map<String, MemberLine> flattened(int id) {
        Map<String, MemberLine> out = new LinkedHashMap<>();
        flatten(id, 0, out, 0);
        return out;
    }

    private void flatten(int id, long base, Map<String, MemberLine> out, int depth) {
        for (MemberLine m : members.getOrDefault(id, List.of())) {
            if (!m.name().isEmpty()) {
                out.putIfAbsent(m.name(), new MemberLine(m.name(), m.typeId(), base + m.bitsOffset(), m.bitfieldSize()));
            } else if (depth < 64) {
                int inner = strip(m.typeId());
                String kind = types.get(inner).kind();
                if (kind.equals("STRUCT") || kind.equals("UNION")) {
                    flatten(inner, base + m.bitsOffset(), out, depth + 1);
                }
            }
        }
    }
}
