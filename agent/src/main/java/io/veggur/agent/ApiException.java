package io.veggur.agent;

/**
 * A refusal or failure to report to an API caller: an HTTP status and a message that is safe to show a tenant (it
 * names only what the tenant named or may see, never a host path). The audit detail, if any, is for the operator.
 */
public final class ApiException extends RuntimeException {
    private final int status;
    private final String auditDetail;

    public ApiException(int status, String message) {
        this(status, message, null);
    }

    public ApiException(int status, String message, String auditDetail) {
        super(message);
        this.status = status;
        this.auditDetail = auditDetail;
    }

    public int status() {
        return status;
    }

    /** What the audit log records about the refusal: more than the caller is told, when that is useful. */
    public String auditDetail() {
        return auditDetail != null ? auditDetail : getMessage();
    }
}
