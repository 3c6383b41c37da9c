using System.Globalization;
using System.Net.Sockets;
using System.Net.WebSockets;
using HostVM.Host.Api;
using HostVM.Host.Inventory;
using HostVM.Host.Security;
using HostVM.Host.Supervision;
using HostVM.Vmm;
using Microsoft.AspNetCore.Http;

namespace HostVM.Host.Consoles;

/// <summary>
/// The consoles of all VMs: GET /v1/vms/{vm}/console (a WebSocket, <c>?mode=watch|write&amp;replay=BYTES</c>)
/// and GET /v1/vms/{vm}/console/log (the persisted tail). A VM's <see cref="ConsoleBroker"/> is made at
/// its first attach and lives until the VM stops. Every session is counted in <paramref name="sessions"/>, which
/// caps them and closes them (1008) when their token is revoked or expires.
/// </summary>
public sealed class ConsoleHub(VmSupervisor vms, SessionRegistry sessions) : IDisposable
{
    public const int DefaultReplayBytes = SerialSocket.DefaultReplayBytes;

    public const int DefaultLogBytes = 64 * 1024;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Task<ConsoleBroker>> _brokers = [];
    private bool _disposed;

    /// <summary>GET /v1/vms/{vm}/console: checks everything it can before the upgrade (so refusals are problem+json), then runs the session.</summary>
    /// <param name="mayType">Whether the caller's role may type (operator, admin); a viewer may only watch.</param>
    public async Task AttachAsync(VmRecord record, HttpContext context, bool mayType)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(context);
        if (!context.WebSockets.IsWebSocketRequest)
        {
            throw ApiProblem.BadRequest("The console is a WebSocket: connect with a WebSocket client (hostvm vm console NAME), or read GET /v1/vms/{vm}/console/log.");
        }

        var query = context.Request.Query;
        var mode = query["mode"].ToString() switch
        {
            "" or "write" => ConsoleMode.Write,
            "watch" => ConsoleMode.Watch,
            var other => throw ApiProblem.BadRequest($"mode {other}: write watch (read-only) or write (type; one writer per VM).", "mode"),
        };
        if (mode == ConsoleMode.Write && !mayType)
        {
            throw new ApiProblem(403, "forbidden", "The token's role may not do this", $"Typing at VM '{record.Name}''s console needs the operator or admin role; attach with mode=watch to read it.");
        }

        int replay = Bytes(query["replay"].ToString(), "replay", DefaultReplayBytes, 0);
        if (record.State is not (VmStates.Running or VmStates.Paused))
        {
            throw ApiProblem.Conflict($"VM '{record.Name}' is {record.State}; its console exists while it runs (its last output: GET /v1/vms/{record.Name}/console/log).");
        }

        var broker = await BrokerAsync(record).ConfigureAwait(false);
        if (mode == ConsoleMode.Write && broker.HasWriter)
        {
            throw WriterTaken(record.Name);
        }

        using var lease = sessions.TryOpen(AccessControl.CallerOf(context), record, out string tooMany) ?? throw ApiProblem.TooManySessions(tooMany);
        using var socket = await context.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
        using var session = new ConsoleSession(socket, mode, context.RequestAborted);
        session.Closing = () => broker.Detach(session);
        using var tokenLapsed = lease.Ended.Register(() => session.Close(WebSocketCloseStatus.PolicyViolation, lease.Reason!));
        if (!broker.TryAttach(session, replay, out string refusal))
        {
            // Lost a race after the checks above: the close frame says why.
            session.Close(refusal == "the VM stopped" ? WebSocketCloseStatus.NormalClosure : WebSocketCloseStatus.PolicyViolation, refusal);
        }

        try
        {
            await session.RunAsync((keys, token) => broker.TypeAsync(session, keys, token)).ConfigureAwait(false);
        }
        finally
        {
            broker.Detach(session);
        }
    }

    /// <summary>GET /v1/vms/{vm}/console/log?bytes=N: the last N bytes of the serial log on disk (the VM may run or not).</summary>
    public IResult Log(VmRecord record, string? bytes)
    {
        ArgumentNullException.ThrowIfNull(record);
        int n = Bytes(bytes, "bytes", DefaultLogBytes, 1);
        return Results.Bytes(RotatingLog.ReadTail(vms.PathsOf(record).SerialLog, n), "text/plain; charset=utf-8");
    }

    private static ApiProblem WriterTaken(string vm) =>
        ApiProblem.Conflict($"VM '{vm}': another session is typing at its console (one writer at a time); attach with mode=watch to read, or wait until it detaches.");

    private static int Bytes(string? text, string name, int fallback, int min)
    {
        if (string.IsNullOrEmpty(text))
        {
            return fallback;
        }

        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < min || n > ConsoleBroker.KeptBytes)
        {
            throw ApiProblem.BadRequest($"{name} {text}: must be a whole number of bytes from {min} to {ConsoleBroker.KeptBytes} (1 MiB).", name);
        }

        return n;
    }

    /// <summary>The VM's broker, connecting to its VMM at the first attach; waits until the VMM's replay has arrived.</summary>
    private async Task<ConsoleBroker> BrokerAsync(VmRecord record)
    {
        Task<ConsoleBroker> connecting;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_brokers.TryGetValue(record.Id, out connecting!))
            {
                connecting = ConsoleBroker.ConnectAsync(record.Name, vms.PathsOf(record).ConsoleSocket, ended => Forget(record.Id, ended));
                _brokers[record.Id] = connecting;
            }
        }

        ConsoleBroker broker;
        try
        {
            broker = await connecting.ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            lock (_lock)
            {
                if (_brokers.TryGetValue(record.Id, out var current) && current == connecting)
                {
                    _brokers.Remove(record.Id);
                }
            }

            throw new ApiProblem(502, "vmm-unreachable", "The VM's console did not answer", $"VM '{record.Name}': {e.Message}; if the VM is running, try again (`hostvm vm show {record.Name}`).");
        }

        await broker.Settled.ConfigureAwait(false);
        return broker;
    }

    private void Forget(string vmId, ConsoleBroker ended)
    {
        lock (_lock)
        {
            // A task still connecting can only be the one that made this broker (it ended at once).
            if (_brokers.TryGetValue(vmId, out var current) && (!current.IsCompleted || (current.IsCompletedSuccessfully && current.Result == ended)))
            {
                _brokers.Remove(vmId);
            }
        }
    }

    /// <summary>The daemon is stopping: every session is closed with 1001 (going away), so shutdown does not wait for clients to detach.</summary>
    public void Dispose()
    {
        List<Task<ConsoleBroker>> brokers;
        lock (_lock)
        {
            _disposed = true;
            brokers = [.. _brokers.Values];
            _brokers.Clear();
        }

        foreach (var broker in brokers.Where(b => b.IsCompletedSuccessfully))
        {
            broker.Result.Dispose();
        }
    }
}
