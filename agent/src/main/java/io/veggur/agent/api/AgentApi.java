package io.veggur.agent.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.helidon.http.HeaderNames;
import io.helidon.http.Status;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.HttpRouting;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;
import io.veggur.agent.AgentService;
import io.veggur.agent.ApiException;
import io.veggur.agent.audit.AuditEntry;
import io.veggur.agent.audit.AuditRecord;
import io.veggur.agent.exec.ExecOutput;
import io.veggur.agent.exec.ExecReaderGoneException;
import io.veggur.agent.exec.ExecStream;
import io.veggur.agent.store.AgentStore;
import io.veggur.agent.store.CreatedTenant;
import io.veggur.agent.store.Environment;
import io.veggur.agent.store.Grant;
import io.veggur.agent.store.Principal;
import io.veggur.agent.store.StoreException;
import io.veggur.agent.store.Tenant;
import io.veggur.agent.store.VisibleVm;
import io.veggur.agent.store.VmRef;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The agent's REST API (JSON over HTTP, see docs/api.md). Every request but {@code /v1/health} carries a bearer
 * token; every decision on an authenticated or refused request is appended to the audit log, allowed or denied,
 * before the answer is sent. VMs are named {@code /v1/vms/OWNER/NAME}; internal ids and host paths never appear.
 */
public final class AgentApi {
    private static final Logger LOG = System.getLogger(AgentApi.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_BODY = 64 << 10;
    private static final Duration DEFAULT_EXEC_TIMEOUT = Duration.ofMinutes(2);

    /** One API operation, run for an authenticated principal; returns the status and the body. */
    private interface Operation {
        Answer run(Principal who, ServerRequest request) throws IOException;
    }

    /** A JSON answer, or (status 200, body null) a stream of JSON lines that {@code stream} writes. */
    private record Answer(int status, JsonNode body, LineStream stream) {
        Answer(int status, JsonNode body) {
            this(status, body, null);
        }

        static Answer ok(JsonNode body) {
            return new Answer(200, body);
        }

        static Answer streaming(LineStream stream) {
            return new Answer(200, null, stream);
        }
    }

    /** Writes an answer's JSON lines; a failure to write means the client left. */
    private interface LineStream {
        void writeTo(JsonLines lines) throws IOException;
    }

    private final AgentStore store;
    private final AgentService service;
    private final WebServer server;

    private AgentApi(AgentStore store, AgentService service, String host, int port) {
        this.store = store;
        this.service = service;
        this.server = WebServer.builder()
                .host(host)
                .port(port)
                .maxPayloadSize(MAX_BODY)
                .routing(this::routes)
                .build()
                .start();
    }

    public static AgentApi start(String host, int port, AgentStore store, AgentService service) {
        return new AgentApi(store, service, host, port);
    }

    public String url() {
        return "http://" + (server.prototype().host().contains(":") ? "[" + server.prototype().host() + "]"
                : server.prototype().host()) + ":" + server.port();
    }

    public void stop() {
        server.stop();
    }

    private void routes(HttpRouting.Builder routing) {
        routing.get("/v1/health", (request, response) -> send(response, 200, JSON.createObjectNode().put("status", "ok")))
                .get("/v1/whoami", handle("whoami", (who, request) -> Answer.ok(
                        JSON.createObjectNode().put("principal", who.auditName()))))
                .get("/v1/tenants", handle("tenant.list", (who, request) -> Answer.ok(tenants(service.tenants(who)))))
                .post("/v1/tenants", handle("tenant.create", this::createTenant))
                .get("/v1/audit", handle("audit.read", this::audit))
                .get("/v1/vms", handle("vm.list", (who, request) -> Answer.ok(vms(service.vms(who)))))
                .post("/v1/vms", handle("vm.create", this::createVm))
                .get("/v1/vms/{owner}/{name}", handle("vm.read", (who, request) -> Answer.ok(vm(service.vm(who, ref(who, request))))))
                .delete("/v1/vms/{owner}/{name}", handle("vm.delete", (who, request) -> {
                    service.deleteVm(who, ref(who, request));
                    return Answer.ok(JSON.createObjectNode().put("deleted", true));
                }))
                .post("/v1/vms/{owner}/{name}/start", handle("vm.start", (who, request) -> Answer.ok(vm(service.startVm(who, ref(who, request))))))
                .post("/v1/vms/{owner}/{name}/stop", handle("vm.stop", (who, request) -> Answer.ok(vm(service.stopVm(who, ref(who, request))))))
                .get("/v1/vms/{owner}/{name}/grants", handle("grant.list", (who, request) -> Answer.ok(grants(service.grants(who, ref(who, request))))))
                .put("/v1/vms/{owner}/{name}/grants/{grantee}", handle("grant.set", (who, request) -> Answer.ok(grant(
                        service.grant(who, ref(who, request), request.path().pathParameters().get("grantee"),
                                text(body(request), "role", null))))))
                .delete("/v1/vms/{owner}/{name}/grants/{grantee}", handle("grant.revoke", (who, request) -> Answer.ok(
                        JSON.createObjectNode().put("revoked", service.revoke(who, ref(who, request),
                                request.path().pathParameters().get("grantee"))))))
                .get("/v1/vms/{owner}/{name}/environment", handle("env.read", (who, request) -> Answer.ok(environment(
                        service.environment(who, ref(who, request))))))
                .put("/v1/vms/{owner}/{name}/environment", handle("env.create", this::createEnvironment))
                .delete("/v1/vms/{owner}/{name}/environment", handle("env.delete", (who, request) -> {
                    service.deleteEnvironment(who, ref(who, request));
                    return Answer.ok(JSON.createObjectNode().put("deleted", true));
                }))
                .post("/v1/vms/{owner}/{name}/environment/exec", handle("env.exec", this::exec))
                .get("/v1/environments", handle("env.list", (who, request) -> {
                    ArrayNode list = JSON.createArrayNode();
                    service.environments(who).forEach(e -> list.add(environment(e)));
                    return Answer.ok(list);
                }))
                .any((request, response) -> {
                    Optional<Principal> who = authenticate(request);
                    String actor = who.map(Principal::auditName).orElse("anonymous");
                    refuse(response, actor, "api.unknown", request, who.isEmpty() ? 401 : 404,
                            who.isEmpty() ? "missing or invalid bearer token" : "no such API path", null);
                });
    }

    /** Authenticates, runs, audits and answers; failures become one JSON error with the matching status. */
    private io.helidon.webserver.http.Handler handle(String action, Operation operation) {
        return (request, response) -> {
            Optional<Principal> who = authenticate(request);
            if (who.isEmpty()) {
                refuse(response, "anonymous", action, request, 401, "missing or invalid bearer token", null);
                return;
            }
            String actor = who.get().auditName();
            try {
                Answer answer = operation.run(who.get(), request);
                store.audit().append(AuditEntry.allowed(actor, "api." + action, target(request), null));
                if (answer.stream() != null) {
                    stream(response, action, answer.stream());
                } else {
                    send(response, answer.status(), answer.body());
                }
            } catch (ApiException e) {
                refuse(response, actor, action, request, e.status(), e.getMessage(), e.auditDetail());
            } catch (StoreException e) {
                int status = switch (e.reason()) {
                    case NOT_FOUND -> 404;
                    case CONFLICT -> 409;
                    case FORBIDDEN -> 403;
                };
                refuse(response, actor, action, request, status, e.getMessage(), null);
            } catch (IllegalArgumentException | IOException e) {
                refuse(response, actor, action, request, 400, e.getMessage(), null);
            } catch (RuntimeException e) {
                LOG.log(Level.ERROR, "api." + action + " failed", e);
                refuse(response, actor, action, request, 500, "internal error (see the agent's log)", e.toString());
            }
        };
    }

    private Optional<Principal> authenticate(ServerRequest request) {
        return request.headers().first(HeaderNames.AUTHORIZATION)
                .filter(value -> value.regionMatches(true, 0, "Bearer ", 0, 7))
                .flatMap(value -> store.authenticate(value.substring(7).trim()));
    }

    private void refuse(ServerResponse response, String actor, String action, ServerRequest request, int status,
                        String message, String auditDetail) {
        store.audit().append(AuditEntry.denied(actor, "api." + action, target(request),
                status + " " + (auditDetail != null ? auditDetail : message)));
        if (status == 401) {
            response.header(HeaderNames.WWW_AUTHENTICATE, "Bearer");
        }
        send(response, status, JSON.createObjectNode().put("error", message));
    }

    private static void send(ServerResponse response, int status, JsonNode body) {
        try {
            response.status(Status.create(status))
                    .header(HeaderNames.CONTENT_TYPE, "application/json")
                    .send(JSON.writeValueAsBytes(body));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Sends a 200 answer of JSON lines as they are written (chunked). A failure once it has begun cannot change the
     * status any more: it becomes a last line {@code {"error": ...}}, if the client is still there to read it.
     */
    private static void stream(ServerResponse response, String action, LineStream stream) {
        response.status(Status.OK_200).header(HeaderNames.CONTENT_TYPE, "application/x-ndjson");
        try (JsonLines lines = new JsonLines(response.outputStream())) {
            try {
                stream.writeTo(lines);
            } catch (ApiException e) {
                lines.error(e.getMessage());
            } catch (IOException | RuntimeException e) {
                if (!lines.broken()) {
                    LOG.log(Level.ERROR, "api." + action + " failed while answering", e);
                    lines.error("internal error (see the agent's log)");
                }
            }
        } catch (IOException e) {
            // the client left: nothing more to tell it
        }
    }

    /** The request as the audit log names it: method and raw path, bounded. */
    private static String target(ServerRequest request) {
        String target = request.prologue().method().text() + " " + request.path().rawPath();
        return target.length() <= 256 ? target : target.substring(0, 253) + "...";
    }

    // ---- operations with bodies

    private Answer createTenant(Principal who, ServerRequest request) throws IOException {
        CreatedTenant created = service.createTenant(who, text(body(request), "name", null));
        return new Answer(201, JSON.createObjectNode().put("name", created.tenant().name()).put("token", created.token()));
    }

    private Answer createVm(Principal who, ServerRequest request) throws IOException {
        JsonNode body = body(request);
        int memory = integer(body, "memoryMib", 256);
        int vcpus = integer(body, "vcpus", 1);
        return new Answer(201, vm(service.createVm(who, text(body, "name", null), memory, vcpus)));
    }

    private Answer audit(Principal who, ServerRequest request) {
        long after = Long.parseLong(request.query().first("after").orElse("0"));
        int limit = Integer.parseInt(request.query().first("limit").orElse("1000"));
        ArrayNode list = JSON.createArrayNode();
        for (AuditRecord record : service.audit(who, after, limit)) {
            list.addObject().put("seq", record.seq()).put("time", record.time().toString())
                    .put("actor", record.entry().actor()).put("action", record.entry().action())
                    .put("target", record.entry().target())
                    .put("decision", record.entry().decision().name().toLowerCase(Locale.ROOT))
                    .put("detail", record.entry().detail());
        }
        return Answer.ok(list);
    }

    /**
     * Body: {@code flavor}, {@code role}, and for the network flavor {@code clients} (address blocks) and
     * {@code plaintext}. The answer carries what the flavor tells its tenant once (the network flavor's identity).
     */
    private Answer createEnvironment(Principal who, ServerRequest request) throws IOException {
        JsonNode body = body(request);
        List<String> clients = new ArrayList<>();
        JsonNode blocks = body.path("clients");
        if (!blocks.isMissingNode() && !blocks.isNull()) {
            if (!blocks.isArray() || blocks.size() > 16) {
                throw new IllegalArgumentException("\"clients\" must be a list of at most 16 address blocks");
            }
            for (JsonNode block : blocks) {
                if (!block.isTextual()) {
                    throw new IllegalArgumentException("every client address block must be a string, e.g. 10.0.0.2/32");
                }
                clients.add(block.asText());
            }
        }
        JsonNode plaintext = body.path("plaintext");
        if (!plaintext.isMissingNode() && !plaintext.isNull() && !plaintext.isBoolean()) {
            throw new IllegalArgumentException("\"plaintext\" must be true or false");
        }
        AgentService.CreatedEnvironment created = service.createEnvironment(who, ref(who, request),
                text(body, "flavor", null), text(body, "role", null), clients, plaintext.asBoolean(false));
        ObjectNode answer = environment(created.environment());
        created.toldOnce().forEach(answer::put);
        return new Answer(201, answer);
    }

    private Answer exec(Principal who, ServerRequest request) throws IOException {
        JsonNode body = body(request);
        List<String> argv = new ArrayList<>();
        if (!body.path("argv").isArray()) {
            throw new IllegalArgumentException("give the command as \"argv\": [\"program\", \"arg\", ...]");
        }
        for (JsonNode arg : body.path("argv")) {
            if (!arg.isTextual()) {
                throw new IllegalArgumentException("every argument must be a string");
            }
            argv.add(arg.asText());
        }
        Duration timeout = body.has("timeoutSeconds") ? Duration.ofSeconds(integer(body, "timeoutSeconds", 0))
                : DEFAULT_EXEC_TIMEOUT;
        AgentService.PreparedExec exec = service.exec(who, ref(who, request), argv, timeout);
        return Answer.streaming(lines -> {
            AgentService.Finished finished;
            try {
                finished = exec.run(new ExecOutput() {
                    @Override
                    public void write(ExecStream stream, byte[] bytes, int offset, int length) throws IOException {
                        lines.write(JSON.createObjectNode().put(stream == ExecStream.STDOUT ? "stdout" : "stderr",
                                Arrays.copyOfRange(bytes, offset, offset + length)));
                    }

                    @Override
                    public void keepAlive() throws IOException {
                        lines.blank();
                    }
                });
            } catch (ExecReaderGoneException e) {
                return;   // the client left, and the command was killed
            }
            lines.write(JSON.createObjectNode().put("exitCode", finished.result().exitCode())
                    .put("timedOut", finished.result().timedOut()).put("truncated", finished.truncated()));
        });
    }

    // ---- request parsing

    /** The VM a path names; the owner {@code ~} is the caller (a tenant's own VM). */
    private static VmRef ref(Principal who, ServerRequest request) {
        String owner = request.path().pathParameters().get("owner");
        if (owner.equals("~")) {
            if (!(who instanceof Tenant tenant)) {
                throw new IllegalArgumentException("the operator must name the VM's owner, as OWNER/NAME");
            }
            owner = tenant.name();
        }
        return new VmRef(owner, request.path().pathParameters().get("name"));
    }

    private static JsonNode body(ServerRequest request) throws IOException {
        if (!request.content().hasEntity()) {
            return JSON.createObjectNode();
        }
        JsonNode body = JSON.readTree(request.content().as(byte[].class));
        if (body == null || !body.isObject()) {
            throw new IllegalArgumentException("the request body must be a JSON object");
        }
        return body;
    }

    private static String text(JsonNode body, String field, String fallback) {
        JsonNode value = body.get(field);
        if (value == null || value.isNull()) {
            return fallback;
        }
        if (!value.isTextual()) {
            throw new IllegalArgumentException("\"" + field + "\" must be a string");
        }
        return value.asText();
    }

    private static int integer(JsonNode body, String field, int fallback) {
        JsonNode value = body.get(field);
        if (value == null || value.isNull()) {
            return fallback;
        }
        if (!value.canConvertToInt() || !value.isIntegralNumber()) {
            throw new IllegalArgumentException("\"" + field + "\" must be an integer");
        }
        return value.asInt();
    }

    // ---- response bodies

    private static ArrayNode tenants(List<Tenant> tenants) {
        ArrayNode list = JSON.createArrayNode();
        tenants.forEach(t -> list.addObject().put("name", t.name()).put("created", t.created().toString()));
        return list;
    }

    private static ArrayNode vms(List<VisibleVm> vms) {
        ArrayNode list = JSON.createArrayNode();
        vms.forEach(vm -> list.add(vm(vm)));
        return list;
    }

    private static ObjectNode vm(VisibleVm visible) {
        return JSON.createObjectNode()
                .put("vm", visible.vm().ref().toString())
                .put("owner", visible.vm().owner())
                .put("name", visible.vm().name())
                .put("state", lower(visible.vm().state()))
                .put("relation", lower(visible.relation()))
                .put("role", lower(visible.role()))
                .put("memoryMib", visible.vm().memoryMib())
                .put("vcpus", visible.vm().vcpus());
    }

    private static ArrayNode grants(List<Grant> grants) {
        ArrayNode list = JSON.createArrayNode();
        grants.forEach(g -> list.add(grant(g)));
        return list;
    }

    private static ObjectNode grant(Grant grant) {
        return JSON.createObjectNode().put("vm", grant.vm().toString()).put("grantee", grant.grantee())
                .put("role", lower(grant.role())).put("created", grant.created().toString());
    }

    /** {@code endpoint}: what the environment's tools connect to (e.g. {@code /vmi/vmi.sock} in a container). */
    private ObjectNode environment(Environment environment) {
        return JSON.createObjectNode()
                .put("vm", environment.vm().toString())
                .put("tenant", environment.tenant())
                .put("flavor", lower(environment.flavor()))
                .put("role", lower(environment.role()))
                .put("state", lower(environment.state()))
                .put("endpoint", service.endpoint(environment))
                .put("detail", environment.detail())
                .put("created", environment.created().toString());
    }

    private static String lower(Enum<?> value) {
        return value.name().toLowerCase(Locale.ROOT);
    }
}
