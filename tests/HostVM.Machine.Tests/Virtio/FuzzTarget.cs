using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// The device-specific half of a fuzz run: the device, the malformed requests only it understands
/// (blk headers, net frames, balloon PFNs), what the host side does meanwhile, and one valid request
/// that proves the device still works after a reset.
/// </summary>
internal abstract class FuzzTarget : IDisposable
{
    public abstract VirtioDevice Device { get; }

    /// <summary>The balloon may legitimately zero any RAM page a random PFN names, canary pages included.</summary>
    public virtual bool MayZeroPages => false;

    /// <summary>A request with well-formed buffers (mostly) but contents the device must survive.</summary>
    public abstract FuzzRequest MalformedRequest(FuzzGuest guest);

    /// <summary>Something the host does meanwhile (frames from the network, console input, a balloon target).</summary>
    public virtual void HostEvent(FuzzGuest guest)
    {
    }

    /// <summary>After a fresh set-up: one valid request that must complete in bounded time with the right result.</summary>
    public abstract void CheckLive(FuzzGuest guest, int batch);

    /// <summary>At the end: the device really saw and handled malformed requests (so the test can fail).</summary>
    public virtual void CheckExercised(FuzzGuest guest)
    {
    }

    public virtual void Dispose()
    {
    }
}
