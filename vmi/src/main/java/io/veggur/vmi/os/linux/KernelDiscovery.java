package io.veggur.vmi.os.linux;

import io.veggur.vmi.memory.PhysicalMemory;
import io.veggur.vmi.paging.PageTableWalker;
import io.veggur.vmi.paging.PagingMode;
import io.veggur.vmi.symbols.btf.Btf;
import io.veggur.vmi.symbols.kallsyms.KallsymsFinder;
import io.veggur.vmi.symbols.kallsyms.KernelSymbols;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.OptionalLong;

/**
 * Finds a Linux kernel in guest-physical memory with no profile given, only what the kernel itself carries.
 *
 * <p>Full discovery: (1) kallsyms tables give every symbol's runtime address and the image's physical load address;
 * (2) the banner is read at {@code linux_banner}; (3) the paging mode is the one under which the kernel's own top
 * table ({@code init_top_pgt}) maps {@code _text} to where the image really is; (4) the build id comes from the
 * image's ELF notes; (5) struct layouts come from the kernel's BTF ({@code __start_BTF..__stop_BTF}).
 *
 * <p>Cached discovery, for a kernel seen before: the cached profile says where the banner sits in the image, so the
 * image is found by checking each 2 MiB-aligned load address for that banner; the virtual slide is the one whose
 * {@code _text} the kernel's page tables map to that address. No table scan, no BTF parse. A profile that fails any
 * check is ignored and full discovery runs.
 */
public final class KernelDiscovery {
    private final PhysicalMemory memory;
    private final ProfileCache cache;
    private final List<DiscoveryReport.Step> steps = new ArrayList<>();
    private long stepStart;

    private KernelDiscovery(PhysicalMemory memory, ProfileCache cache) {
        this.memory = memory;
        this.cache = cache;
    }

    /** @param cache where profiles are kept between runs; null to neither use nor fill a cache */
    public static LinuxKernel discover(PhysicalMemory memory, ProfileCache cache) throws KernelDiscoveryException {
        return new KernelDiscovery(memory, cache).run(null);
    }

    /**
     * Discovery with the layouts and symbols of a Volatility 3 ISF file instead of the guest's BTF and kallsyms, for
     * kernels built without BTF. The image is still located in memory and the result is cached under the build id.
     */
    public static LinuxKernel discover(PhysicalMemory memory, ProfileCache cache, Path isf) throws KernelDiscoveryException {
        return new KernelDiscovery(memory, cache).run(isf);
    }

    private LinuxKernel run(Path isf) throws KernelDiscoveryException {
        if (isf != null) {
            return withIsf(isf);
        }
        if (cache != null) {
            start();
            for (KernelProfile profile : cache.all()) {
                LinuxKernel kernel = locate(profile, "profile cache", true);
                if (kernel != null) {
                    return kernel;
                }
            }
            finish("profile cache", "no cached profile matches this guest");
        }
        return full();
    }

    private LinuxKernel withIsf(Path isf) throws KernelDiscoveryException {
        start();
        KernelProfile profile;
        try {
            IsfTypes types = IsfTypes.load(isf);
            long text = types.symbol("_text");
            KernelProfile.Symbols relative = new KernelProfile.Symbols(types.symbol("init_task") - text,
                    types.symbol("modules") - text, types.symbol("init_top_pgt") - text, types.symbol("linux_banner") - text,
                    types.hasSymbol("__start_notes") ? types.symbol("__start_notes") - text : 0,
                    types.hasSymbol("__stop_notes") ? types.symbol("__stop_notes") - text : 0);
            String banner = types.banner();
            profile = KernelProfile.of("isf", banner == null ? "Linux version " : banner, relative, types);
        } catch (IOException e) {
            throw new KernelDiscoveryException("reading the ISF file", e.getMessage(), null, e);
        }
        finish("isf", "layouts and symbols from " + isf.getFileName());
        start();
        LinuxKernel located = locate(profile, "locating the image", false);
        if (located == null) {
            throw new KernelDiscoveryException("matching the ISF file", "its kernel image was not found in guest memory",
                    "is it the ISF of this guest's exact kernel build?", null);
        }
        try {
            KernelProfile.Symbols symbols = profile.symbols();
            long textPhysical = located.textPhysical();
            String banner = KernelImageFacts.readBanner(memory, textPhysical + symbols.linuxBanner());
            String buildId = KernelImageFacts.readBuildId(memory, textPhysical + symbols.startNotes(),
                    symbols.stopNotes() - symbols.startNotes());
            KernelProfile identified = new KernelProfile(buildId != null ? buildId : bannerKey(banner), banner, symbols,
                    profile.task(), profile.credUid(), profile.mmPgd(), profile.signalThreadHead(), profile.module());
            save(identified);
            return located.withProfile(identified);
        } catch (IOException e) {
            throw new KernelDiscoveryException("reading the kernel banner", e.getMessage(), null, e);
        }
    }

    /** Matches the cached banner in full; a profile whose banner is only the "Linux version " prefix matches any. */
    private LinuxKernel locate(KernelProfile profile, String step, boolean fromCache) {
        byte[] banner = profile.banner().getBytes(StandardCharsets.UTF_8);
        byte[] candidate = new byte[banner.length];
        long ramEnd = memory.memoryMap().regions().getLast().end();
        for (long text = 0; text + profile.symbols().linuxBanner() + banner.length <= ramEnd; text += KernelImageFacts.PHYSICAL_ALIGN) {
            try {
                memory.read(text + profile.symbols().linuxBanner(), candidate, 0, candidate.length);
            } catch (IOException notRam) {
                continue;
            }
            if (Arrays.equals(candidate, banner)) {
                LinuxKernel kernel = attach(profile, text, step, fromCache);
                if (kernel != null) {
                    return kernel;
                }
            }
        }
        return null;
    }

    /** Finds the virtual slide under which the kernel's page tables map {@code _text} to {@code textPhysical}. */
    private LinuxKernel attach(KernelProfile profile, long textPhysical, String step, boolean fromCache) {
        long root = textPhysical + profile.symbols().initTopPgt();
        List<PageTableWalker> walkers = walkers();
        for (long slide = 0; slide < KernelImageFacts.MAX_SLIDE; slide += KernelImageFacts.PHYSICAL_ALIGN) {
            long text = KernelImageFacts.DEFAULT_TEXT + slide;
            PageTableWalker walker = pagingFor(walkers, root, text, textPhysical, profile.symbols().initTask());
            if (walker != null) {
                finish(step, "profile " + profile.buildId() + " matches; image at physical 0x"
                        + Long.toHexString(textPhysical) + ", " + walker.mode());
                return new LinuxKernel(profile, text, textPhysical, walker, root, new DiscoveryReport(steps, fromCache));
            }
        }
        return null;
    }

    /** One walker per paging mode, reused across candidates (each owns a translation cache). */
    private List<PageTableWalker> walkers() {
        return Arrays.stream(PagingMode.values()).map(mode -> new PageTableWalker(memory, mode)).toList();
    }

    /**
     * The walker whose paging mode makes the kernel's top table map the image where it really is: both
     * {@code _text} and a second image address ({@code probeOffset} above it) must land at the matching physical
     * addresses, which a table read under the wrong number of levels does not achieve by chance. Null if none does.
     */
    private static PageTableWalker pagingFor(List<PageTableWalker> walkers, long root, long text, long textPhysical,
                                             long probeOffset) {
        for (PageTableWalker walker : walkers) {
            if (maps(walker, root, text, textPhysical) && maps(walker, root, text + probeOffset, textPhysical + probeOffset)) {
                return walker;
            }
        }
        return null;
    }

    private static boolean maps(PageTableWalker walker, long root, long virtual, long physical) {
        try {
            return walker.translate(root, virtual) == physical;
        } catch (IOException unmapped) {
            return false;
        }
    }

    private LinuxKernel full() throws KernelDiscoveryException {
        start();
        KernelSymbols symbols;
        try {
            symbols = KallsymsFinder.find(memory);
        } catch (IOException e) {
            throw new KernelDiscoveryException("finding kallsyms", "no Linux kernel found in guest memory ("
                    + e.getMessage() + ")", "the guest may not run Linux or may not have booted yet", e);
        }
        long text = required(symbols, "_text");
        long textPhysical = symbols.imagePhysical(text);
        finish("kallsyms", symbols.count() + " symbols; _text at 0x" + Long.toHexString(text) + ", image at physical 0x"
                + Long.toHexString(textPhysical));

        start();
        String banner;
        String buildId;
        try {
            banner = KernelImageFacts.readBanner(memory, symbols.imagePhysical(required(symbols, "linux_banner")));
            OptionalLong startNotes = symbols.address("__start_notes");
            OptionalLong stopNotes = symbols.address("__stop_notes");
            buildId = startNotes.isPresent() && stopNotes.isPresent()
                    ? KernelImageFacts.readBuildId(memory, symbols.imagePhysical(startNotes.getAsLong()),
                    stopNotes.getAsLong() - startNotes.getAsLong())
                    : null;
        } catch (IOException e) {
            throw new KernelDiscoveryException("reading the kernel banner", e.getMessage(), null, e);
        }
        if (buildId == null) {
            buildId = bannerKey(banner);
        }
        finish("banner", banner);

        start();
        long root = symbols.imagePhysical(required(symbols, "init_top_pgt"));
        PageTableWalker walker = pagingFor(walkers(), root, text, textPhysical, required(symbols, "init_task") - text);
        if (walker == null) {
            throw new KernelDiscoveryException("finding the paging mode", "the kernel's page tables at physical 0x"
                    + Long.toHexString(root) + " map _text under neither 4- nor 5-level paging", null, null);
        }
        finish("paging", walker.mode() + ", kernel page tables at physical 0x" + Long.toHexString(root));

        start();
        KernelProfile profile = profileFromBtf(symbols, text, banner, buildId);
        finish("btf", "layouts of task_struct, cred, mm_struct, signal_struct, module");
        save(profile);
        return new LinuxKernel(profile, text, textPhysical, walker, root, new DiscoveryReport(steps, false));
    }

    private KernelProfile profileFromBtf(KernelSymbols symbols, long text, String banner, String buildId)
            throws KernelDiscoveryException {
        long start = required(symbols, "__start_BTF");
        long stop = required(symbols, "__stop_BTF");
        if (stop <= start || stop - start > (64 << 20)) {
            throw new KernelDiscoveryException("reading BTF", "implausible BTF bounds 0x" + Long.toHexString(start)
                    + "..0x" + Long.toHexString(stop), "pass --symbols with an ISF file for this kernel", null);
        }
        try {
            byte[] raw = memory.read(symbols.imagePhysical(start), (int) (stop - start));
            Btf btf = Btf.parse(ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN));
            KernelProfile.Symbols relative = new KernelProfile.Symbols(required(symbols, "init_task") - text,
                    required(symbols, "modules") - text, required(symbols, "init_top_pgt") - text,
                    required(symbols, "linux_banner") - text, symbols.address("__start_notes").orElse(text) - text,
                    symbols.address("__stop_notes").orElse(text) - text);
            return KernelProfile.of(buildId, banner, relative, new BtfTypes(btf));
        } catch (IOException e) {
            throw new KernelDiscoveryException("reading BTF", e.getMessage(),
                    "the kernel may lack CONFIG_DEBUG_INFO_BTF; pass --symbols with an ISF file for this kernel", e);
        }
    }

    private static long required(KernelSymbols symbols, String name) throws KernelDiscoveryException {
        OptionalLong address = symbols.address(name);
        if (address.isEmpty()) {
            throw new KernelDiscoveryException("looking up symbols", "the kernel exports no symbol '" + name + "'",
                    "pass --symbols with an ISF file for this kernel", null);
        }
        return address.getAsLong();
    }

    private void save(KernelProfile profile) {
        if (cache != null) {
            try {
                cache.save(profile);
            } catch (IOException e) {
                steps.add(new DiscoveryReport.Step("profile cache", "could not save: " + e.getMessage(), 0));
            }
        }
    }

    /** Cache key for kernels without a GNU build id note. */
    private static String bannerKey(String banner) {
        return "banner-" + HexFormat.of().formatHex(sha256(banner)).substring(0, 40);
    }

    private static byte[] sha256(String text) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
    }

    private void start() {
        stepStart = System.nanoTime();
    }

    private void finish(String step, String result) {
        steps.add(new DiscoveryReport.Step(step, result, System.nanoTime() - stepStart));
    }
}
