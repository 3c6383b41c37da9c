using System.Globalization;
using System.Net.Sockets;
using HostVM.Host.Api;
using HostVM.Host.Inventory;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace HostVM.Host.Security;

/// <summary>
/// The gate in front of every route: finds the caller (a Bearer token, or the owner on the local socket),
/// refuses with 401 (no valid token) or 403 (a role that may not), slows down repeated failures (429), and
/// writes every mutating call to the audit log before its answer is sent. A request with no token that is
/// refused counts as a failed authentication as a bad token does: otherwise anyone could send refusals
/// without limit, each one an audit entry. Project visibility (404 across
/// projects) is the handlers' part, through <see cref="Touch"/>'s callers in HostApi.
/// </summary>
public sealed class AccessControl(TokenService tokens, AuthFailureThrottle throttle, AuditLog audit)
{
    private const string ObjectKey = "hostvm.audit.object";
    private const string ProjectKey = "hostvm.audit.project";
    private const string DetailKey = "hostvm.audit.detail";
    private const string WrittenKey = "hostvm.audit.written";

    public TokenService Tokens { get; } = tokens;

    public AuditLog Audit { get; } = audit;

    /// <summary>The caller of a request that passed the gate.</summary>
    public static Caller CallerOf(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Items[typeof(Caller)] as Caller ?? throw new InvalidOperationException("The request did not pass access control.");
    }

    /// <summary>Names the object a request acts on (for the audit log): "vm/web" in project "alpha".</summary>
    public static void Touch(HttpContext context, string kind, string name, string? project)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Items[ObjectKey] = $"{kind}/{name}";
        context.Items[ProjectKey] = project;
    }

    /// <summary>Why a request was refused, for the audit log.</summary>
    public static void Explain(HttpContext context, string detail)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Items[DetailKey] = detail;
    }

    public async Task InvokeAsync(HttpContext context, Func<Task> next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var endpoint = context.GetEndpoint()?.Metadata.GetMetadata<ApiEndpoint>();
        if (endpoint is null)
        {
            await next().ConfigureAwait(false); // no such route: the fallback's 404, for anyone
            return;
        }

        string remote = context.Connection.RemoteIpAddress?.ToString() ?? "unix";
        context.Items[typeof(Caller)] = Caller.Anonymous(remote);
        if (endpoint.Audited)
        {
            context.Response.OnStarting(() =>
            {
                WriteAudit(context, endpoint);
                return Task.CompletedTask;
            });
        }

        var caller = await IdentifyAsync(context, remote).ConfigureAwait(false);
        context.Items[typeof(Caller)] = caller;
        if (!caller.May(endpoint.Access))
        {
            if (!caller.IsAuthenticated)
            {
                context.Response.Headers.WWWAuthenticate = "Bearer realm=\"hostvm\"";
                // No token at all guesses nothing, so it is not delayed (a delay would only hold a flood's
                // connections open longer); it is counted, so a flood is answered 429 and audited in counts.
                throw TooMany(context, remote) ?? new ApiProblem(401, "unauthorized", "A token is needed", $"{endpoint.Method} {endpoint.Pattern} needs a token: send Authorization: Bearer hvt_... (hostvm token create, or the admin token printed at the daemon's first start).");
            }

            throw new ApiProblem(403, "forbidden", "The token's role may not do this",
                $"{endpoint.Action} needs {Needs(endpoint.Access)}; token {caller.Who} is {caller.Role}{(caller.Project is { } p ? $" of project '{p}'" : string.Empty)}.");
        }

        await next().ConfigureAwait(false);
    }

    /// <summary>
    /// Called last for every request (after any problem was written): a mutating call whose answer never
    /// started (the client went away) is still put on record.
    /// </summary>
    public void Finish(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.GetEndpoint()?.Metadata.GetMetadata<ApiEndpoint>() is { Audited: true } endpoint && !context.Response.HasStarted)
        {
            WriteAudit(context, endpoint);
        }
    }

    private async Task<Caller> IdentifyAsync(HttpContext context, string remote)
    {
        string? header = context.Request.Headers.Authorization;
        if (header is null)
        {
            // The local socket is the owner's alone (0600, and PeerCredentials closes other users' connections): whoever reaches it is the host's admin.
            return IsLocalSocket(context) ? Caller.Local : Caller.Anonymous(remote);
        }

        string? refusal;
        TokenRecord? token = null;
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            refusal = "The Authorization header must be 'Bearer hvt_...'.";
        }
        else
        {
            (token, refusal) = Tokens.Authenticate(header["Bearer ".Length..].Trim());
        }

        if (token is not null)
        {
            return new Caller(token.Id, token.Role, token.Project, remote);
        }

        context.Response.Headers.WWWAuthenticate = "Bearer realm=\"hostvm\", error=\"invalid_token\"";
        if (TooMany(context, remote) is { } tooMany)
        {
            await Task.Delay(AuthFailureThrottle.Delay, context.RequestAborted).ConfigureAwait(false); // a guesser waits
            throw tooMany;
        }

        throw new ApiProblem(401, "unauthorized", "The token was refused", refusal!);
    }

    /// <summary>Counts a failed authentication from <paramref name="remote"/>; past the limit, the 429 to answer (Retry-After is set).</summary>
    private ApiProblem? TooMany(HttpContext context, string remote)
    {
        if (throttle.Fail(remote) is not { } retry)
        {
            return null;
        }

        string seconds = Math.Ceiling(retry.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        context.Response.Headers.RetryAfter = seconds;
        return new ApiProblem(429, "too-many-failures", "Too many failed authentications",
            $"{throttle.Limit} failed authentications from {remote} within {throttle.Window.TotalSeconds:0} s; wait {seconds} s.");
    }

    /// <summary>A connection on the Unix socket: Kestrel gives it no IP addresses (every TCP connection has both).</summary>
    private static bool IsLocalSocket(HttpContext context) =>
        context.Features.Get<IConnectionEndPointFeature>()?.LocalEndPoint is UnixDomainSocketEndPoint
        || (context.Connection.LocalIpAddress is null && context.Connection.RemoteIpAddress is null);

    private static string Needs(Access access) => access switch
    {
        Access.Operate => "the operator or admin role",
        Access.Admin => "the admin role",
        Access.HostAdmin => "an admin token of no project (the host's admin)",
        _ => "a token",
    };

    private void WriteAudit(HttpContext context, ApiEndpoint endpoint)
    {
        if (context.Items.ContainsKey(WrittenKey))
        {
            return;
        }

        context.Items[WrittenKey] = true;
        var caller = context.Items[typeof(Caller)] as Caller;
        string? project = context.Items.TryGetValue(ProjectKey, out var p) ? p as string : caller?.Project;
        Audit.Add(new AuditRecord(
            0, DateTimeOffset.UtcNow, caller?.Who ?? "anonymous", caller is { IsAuthenticated: true } ? caller.Role : null, project,
            caller?.Remote ?? "unknown", endpoint.Method, context.Request.Path + context.Request.QueryString, endpoint.Action,
            context.Items.TryGetValue(ObjectKey, out var o) ? o as string : null, context.Response.StatusCode,
            context.Items.TryGetValue(DetailKey, out var d) ? d as string : null), caller is { IsAuthenticated: true });
    }
}
