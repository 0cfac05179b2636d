package io.veggur.vmi.os.linux;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.zip.GZIPInputStream;
import org.tukaani.xz.XZInputStream;

/**
 * {@link TypeInfo} over a Volatility 3 ISF (Intermediate Symbol Format) JSON file, plain, .gz or .xz: the fallback
 * for kernels built without BTF. Types live under {@code user_types}; a member is {@code {offset, type}} and a
 * struct-typed member names its type. Anonymous structs and unions appear as types named {@code unnamed_*}; their
 * members are searched as if they belonged to the enclosing struct.
 */
final class IsfTypes implements TypeInfo {
    private static final int MAX_ANONYMOUS_DEPTH = 8;

    private final JsonNode root;
    private final JsonNode userTypes;

    private IsfTypes(JsonNode root) throws IOException {
        this.root = root;
        this.userTypes = root.path("user_types");
        if (!userTypes.isObject() || !root.path("symbols").isObject()) {
            throw new IOException("not a Volatility 3 ISF file: no user_types/symbols objects");
        }
    }

    static IsfTypes load(Path file) throws IOException {
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(file))) {
            String name = file.getFileName().toString();
            InputStream in = name.endsWith(".gz") ? new GZIPInputStream(raw) : name.endsWith(".xz") ? new XZInputStream(raw) : raw;
            return new IsfTypes(new ObjectMapper().readTree(in));
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new IOException(file + " is not valid ISF JSON: " + e.getOriginalMessage());
        }
    }

    /** A symbol's link-time address, or throws naming the symbol. */
    long symbol(String name) throws IOException {
        JsonNode address = root.path("symbols").path(name).path("address");
        if (!address.canConvertToLong() && !address.isBigInteger()) {
            throw new IOException("the ISF file has no address for symbol '" + name + "'");
        }
        return address.bigIntegerValue().longValue();
    }

    boolean hasSymbol(String name) {
        return root.path("symbols").path(name).has("address");
    }

    /** The banner the symbols were built for, when the ISF carries it ({@code linux_banner.constant_data}). */
    String banner() {
        JsonNode data = root.path("symbols").path("linux_banner").path("constant_data");
        if (!data.isTextual()) {
            return null;
        }
        String text = new String(Base64.getDecoder().decode(data.asText()), java.nio.charset.StandardCharsets.UTF_8);
        int end = text.indexOf('\n');
        end = end < 0 ? text.indexOf('\0') : end;
        return end < 0 ? text : text.substring(0, end);
    }

    @Override
    public int size(String struct) throws IOException {
        return struct(struct).path("size").asInt();
    }

    @Override
    public int offset(String struct, String path) throws IOException {
        return (int) resolve(struct, path).offset;
    }

    @Override
    public int arrayLength(String struct, String path) throws IOException {
        JsonNode type = resolve(struct, path).type;
        if (!"array".equals(type.path("kind").asText())) {
            throw new IOException("ISF member " + struct + "." + path + " is not an array");
        }
        return type.path("count").asInt();
    }

    @Override
    public boolean has(String struct, String path) throws IOException {
        try {
            resolve(struct, path);
            return true;
        } catch (MissingMember e) {
            return false;
        }
    }

    private record Resolved(long offset, JsonNode type) {}

    private static final class MissingMember extends IOException {
        MissingMember(String message) {
            super(message);
        }
    }

    private JsonNode struct(String name) throws IOException {
        JsonNode struct = userTypes.path(name);
        if (!struct.isObject()) {
            throw new IOException("the ISF file has no struct '" + name + "'");
        }
        return struct;
    }

    private Resolved resolve(String struct, String path) throws IOException {
        JsonNode current = struct(struct);
        long offset = 0;
        JsonNode type = null;
        String[] names = path.split("\\.");
        for (int i = 0; i < names.length; i++) {
            Resolved member = find(current, names[i], 0);
            if (member == null) {
                throw new MissingMember("the ISF file has no member " + struct + "." + path);
            }
            offset += member.offset;
            type = member.type;
            if (i + 1 < names.length) {
                current = struct(type.path("name").asText());
            }
        }
        return new Resolved(offset, type);
    }

    private Resolved find(JsonNode struct, String name, int depth) throws IOException {
        JsonNode fields = struct.path("fields");
        JsonNode field = fields.path(name);
        if (field.isObject()) {
            return new Resolved(field.path("offset").asLong(), field.path("type"));
        }
        if (depth >= MAX_ANONYMOUS_DEPTH) {
            return null;
        }
        for (var entry : fields.properties()) {
            JsonNode type = entry.getValue().path("type");
            String kind = type.path("kind").asText();
            String typeName = type.path("name").asText();
            if ((kind.equals("struct") || kind.equals("union"))
                    && (typeName.startsWith("unnamed") || entry.getKey().startsWith("unnamed"))) {
                Resolved inner = find(struct(typeName), name, depth + 1);
                if (inner != null) {
                    return new Resolved(entry.getValue().path("offset").asLong() + inner.offset, inner.type);
                }
            }
        }
        return null;
    }
}
