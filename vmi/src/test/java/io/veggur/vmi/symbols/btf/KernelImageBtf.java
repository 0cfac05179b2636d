package io.veggur.vmi.symbols.btf;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Gets the .BTF section out of an x86 bzImage, the way scripts/extract-vmlinux does: the setup header's
 * payload_offset/payload_length (at 0x248/0x24c, counted from the protected-mode code after the (setup_sects+1)
 * 512-byte sectors) locate the compressed vmlinux, whose magic picks the decompressor CLI; the result is an ELF64
 * file whose section headers name .BTF.
 */
final class KernelImageBtf {
    private KernelImageBtf() {}

    /** The Veggur test guest's kernel, if guest/build.sh has built it on this machine. */
    static Optional<Path> testGuestKernel() {
        String guest = System.getenv("VEGGUR_GUEST_DIR");
        if (guest != null && Files.isReadable(Path.of(guest, "vmlinuz"))) {
            return Optional.of(Path.of(guest, "vmlinuz"));
        }
        String cache = System.getenv("VEGGUR_CACHE");
        if (cache == null) {
            String xdg = System.getenv("XDG_CACHE_HOME");
            cache = (xdg != null ? xdg : System.getProperty("user.home") + "/.cache") + "/veggur";
        }
        Path vmlinuz = Path.of(cache, "guest", "default", "vmlinuz");
        return Files.isReadable(vmlinuz) ? Optional.of(vmlinuz) : Optional.empty();
    }

    /** Decompresses {@code bzImage} into {@code workDir}/vmlinux and returns that file's .BTF section bytes. */
    static byte[] extract(Path bzImage, Path workDir) throws IOException, InterruptedException {
        ByteBuffer image = ByteBuffer.wrap(Files.readAllBytes(bzImage)).order(ByteOrder.LITTLE_ENDIAN);
        if (image.getInt(0x202) != 0x53726448) { // "HdrS"
            throw new IOException(bzImage + " is not a bzImage");
        }
        int setupSectors = image.get(0x1f1) == 0 ? 4 : image.get(0x1f1) & 0xff;
        int payloadStart = (setupSectors + 1) * 512 + image.getInt(0x248);
        int payloadLength = image.getInt(0x24c);
        Path payload = workDir.resolve("payload");
        Files.write(payload, java.util.Arrays.copyOfRange(image.array(), payloadStart, payloadStart + payloadLength));

        Path vmlinux = workDir.resolve("vmlinux");
        Process process = new ProcessBuilder(decompressor(image, payloadStart), "-dc")
                .redirectInput(payload.toFile())
                .redirectOutput(vmlinux.toFile())
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new IOException("decompressing " + bzImage + " timed out");
        }
        // The exit status is ignored: the payload ends with the decompressed size, which some CLIs complain about.
        return elfSection(vmlinux, ".BTF");
    }

    private static String decompressor(ByteBuffer image, int start) throws IOException {
        int magic = image.getInt(start);
        if ((magic & 0xffff) == 0x8b1f) {
            return "gzip";
        } else if (magic == 0x587a37fd) {
            return "xz";
        } else if (magic == 0xfd2fb528) {
            return "zstd";
        } else if (magic == 0x184c2102) {
            return "lz4";
        }
        throw new IOException(String.format("unknown kernel payload magic 0x%08x", magic));
    }

    private static byte[] elfSection(Path elf, String wanted) throws IOException {
        try (FileChannel channel = FileChannel.open(elf, StandardOpenOption.READ)) {
            ByteBuffer file = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size())
                    .order(ByteOrder.LITTLE_ENDIAN);
            if (file.getInt(0) != 0x464c457f || file.get(4) != 2) {
                throw new IOException(elf + " is not an ELF64 file");
            }
            long sectionHeaders = file.getLong(0x28);
            int entrySize = file.getShort(0x3a) & 0xffff;
            int count = file.getShort(0x3c) & 0xffff;
            int namesIndex = file.getShort(0x3e) & 0xffff;
            long names = file.getLong((int) (sectionHeaders + (long) namesIndex * entrySize) + 0x18);
            for (int i = 0; i < count; i++) {
                int header = (int) (sectionHeaders + (long) i * entrySize);
                int nameStart = (int) (names + file.getInt(header));
                int nameEnd = nameStart;
                while (file.get(nameEnd) != 0) {
                    nameEnd++;
                }
                byte[] name = new byte[nameEnd - nameStart];
                file.get(nameStart, name);
                if (new String(name, StandardCharsets.US_ASCII).equals(wanted)) {
                    byte[] section = new byte[(int) file.getLong(header + 0x20)];
                    file.get((int) file.getLong(header + 0x18), section);
                    return section;
                }
            }
            throw new IOException(elf + " has no " + wanted + " section");
        }
    }
}
