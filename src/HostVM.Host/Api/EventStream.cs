using System.Globalization;
using System.Text;
using System.Text.Json;
using HostVM.Host.Inventory;
using HostVM.Host.Security;
using Microsoft.AspNetCore.Http;

namespace HostVM.Host.Api;

/// <summary>
/// GET /v1/events/stream: the events as server-sent events (id = event id, event = type, data = the
/// event's JSON) as the inventory writes them. With <c>Last-Event-ID</c> or <c>?since_id=</c> the events
/// after that id come first (from the inventory), then the live ones, with none twice or missing;
/// <c>?vm=NAME</c> keeps one VM's; a project's token gets its project's only. A comment every <see cref="Heartbeat"/> keeps proxies from closing an
/// idle stream. It ends when the client goes, the daemon stops, the client falls too far behind, or its token is
/// revoked or expires (<paramref name="sessions"/> counts it against the token's cap and ends it then).
/// </summary>
public sealed class EventStream(InventoryStore inventory, EventBroadcaster broadcaster, SessionRegistry sessions, CancellationToken daemonStopping)
{
    public static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(15);

    private const int BacklogPage = 500;

    public async Task StreamAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        string? vm = context.Request.Query["vm"].FirstOrDefault() is { Length: > 0 } name ? name : null;
        var caller = AccessControl.CallerOf(context);
        string? project = caller.Project; // a project's token sees its project's events only
        long? after = ResumeId(context.Request);
        using var lease = sessions.TryOpen(caller, null, out string tooMany) ?? throw ApiProblem.TooManySessions(tooMany);

        // Subscribed before the backlog is read: an event written in between is in both, and skipped by id.
        using var subscription = broadcaster.Subscribe();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, daemonStopping, lease.Ended);
        var token = done.Token;
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        try
        {
            await response.Body.FlushAsync(token).ConfigureAwait(false);
            long last = after ?? 0;
            if (after is not null)
            {
                IReadOnlyList<EventRecord> page;
                do
                {
                    page = inventory.EventsAfter(last, vm, BacklogPage, project);
                    foreach (var e in page)
                    {
                        await WriteAsync(response, e, token).ConfigureAwait(false);
                        last = e.Id;
                    }
                }
                while (page.Count == BacklogPage);
            }

            var reader = subscription.Reader;
            Task<bool>? waiting = null;
            while (true)
            {
                waiting ??= reader.WaitToReadAsync(token).AsTask();
                if (await Task.WhenAny(waiting, Task.Delay(Heartbeat, token)).ConfigureAwait(false) != waiting)
                {
                    await WriteTextAsync(response, ": heartbeat\n\n", token).ConfigureAwait(false);
                    continue;
                }

                if (!await waiting.ConfigureAwait(false))
                {
                    break; // dropped, or the daemon stops
                }

                waiting = null;
                while (reader.TryRead(out var e))
                {
                    if (e.Id > last && (vm is null || e.Vm == vm) && (project is null || e.Project == project))
                    {
                        await WriteAsync(response, e, token).ConfigureAwait(false);
                        last = e.Id;
                    }
                }
            }

            if (subscription.Dropped)
            {
                await WriteTextAsync(response, $": too far behind; reconnect with Last-Event-ID: {last}\n\n", token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            if (lease.Reason is { } reason)
            {
                await SayWhyAsync(response, reason, context.RequestAborted).ConfigureAwait(false);
            }
        }
        catch (IOException)
        {
            // The client went away mid-write.
        }
    }

    /// <summary>Tells the client why its stream ends (a comment, so EventSource ignores it), if it still reads within a second.</summary>
    private static async Task SayWhyAsync(HttpResponse response, string reason, CancellationToken requestAborted)
    {
        using var patience = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
        patience.CancelAfter(TimeSpan.FromSeconds(1));
        try
        {
            await WriteTextAsync(response, $": {reason}\n\n", patience.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The client does not read: the stream ends without the reason.
        }
    }

    /// <summary>The id to resume after: the Last-Event-ID header (what EventSource sends on reconnecting), else ?since_id=.</summary>
    private static long? ResumeId(HttpRequest request)
    {
        string? header = request.Headers["Last-Event-ID"].FirstOrDefault();
        (string? text, string field) = header is { Length: > 0 } ? (header, "Last-Event-ID") : (request.Query["since_id"].FirstOrDefault(), "since_id");
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long id)
            ? id
            : throw ApiProblem.BadRequest($"{field} {text}: must be an event id (a whole number, 0 for all events kept).", field);
    }

    private static Task WriteAsync(HttpResponse response, EventRecord e, CancellationToken token) =>
        WriteTextAsync(response, $"id: {e.Id.ToString(CultureInfo.InvariantCulture)}\nevent: {e.Type}\ndata: {JsonSerializer.Serialize(e, HostJsonContext.Default.EventRecord)}\n\n", token);

    private static async Task WriteTextAsync(HttpResponse response, string text, CancellationToken token)
    {
        await response.Body.WriteAsync(Encoding.UTF8.GetBytes(text), token).ConfigureAwait(false);
        await response.Body.FlushAsync(token).ConfigureAwait(false);
    }
}
