using HostVM.Machine.Cpu;
using HostVM.Machine.Memory;

namespace HostVM.Machine;

/// <summary>
/// Runs the dirty-page log's protocol with the harts, for live migration (send all RAM, then repeatedly
/// the pages dirtied since the last pass) and diff snapshots. The log (<see cref="GuestRam.DirtyPages"/>)
/// sees every slow-path store and every device write; this class makes it see fast-path stores too.
/// <para>
/// The invariant: while the log is on, a hart holds a write-TLB entry for a page only if that page was
/// marked when the entry was filled (the store slow path marks, then fills). <see cref="Enable"/> turns
/// marking on and then drops every hart's write-TLB entries, so none filled before survives.
/// </para>
/// <para>
/// A pass (<see cref="CollectPass"/>): (1) take the marks (each word exchanged with zero); (2) ask
/// every hart to drop its write-TLB entries and wait until each has, or runs no guest code; (3) hand
/// the set to the caller, who copies those pages afterwards. Why nothing is lost: a store through an
/// entry still live between (1) and (2) hits a page that was marked when the entry was filled, so
/// that page is in the set taken at (1), and the caller copies it after (2), when the store is done and
/// visible. A store after (2) takes the slow path, marks its page, and is in the next pass. Devices
/// mark after their bytes are written, so a device write is either in the set taken, and copied after
/// it landed, or marked for the next pass.
/// </para>
/// <para>
/// After the harts are paused, one last pass returns everything not yet copied: a copy made with the
/// sets of every pass since <see cref="Enable"/>, on top of a full copy made after Enable returned,
/// equals RAM. Passes come from one thread at a time.
/// </para>
/// </summary>
public sealed class DirtyPageTracker
{
    private readonly DirtyPageLog _log;
    private readonly IReadOnlyList<Hart> _harts;
    private readonly Lock _pass = new();

    public DirtyPageTracker(GuestRam ram, IReadOnlyList<Hart> harts)
    {
        ArgumentNullException.ThrowIfNull(ram);
        ArgumentNullException.ThrowIfNull(harts);
        _log = ram.DirtyPages;
        _harts = harts;
    }

    /// <summary>Whether the log is on.</summary>
    public bool Enabled => _log.Enabled;

    /// <summary>Pages of RAM (the size of a <see cref="DirtyPageSet"/> for <see cref="CollectPass"/>).</summary>
    public int PageCount => _log.PageCount;

    /// <summary>A set sized for this RAM, to reuse across passes.</summary>
    public DirtyPageSet NewSet() => new(_log.PageCount);

    /// <summary>
    /// Starts a fresh log (no page marked). Once it returns, every write to RAM is marked; the caller
    /// copies all of RAM after this (pre-copy's first round), then runs passes.
    /// </summary>
    public void Enable()
    {
        lock (_pass)
        {
            // Marking on first, then the drop: entries filled unmarked while the log was off must go,
            // and one filled between a drop and the switch would be unmarked but survive.
            _log.Enable();
            DropWriteTlbs();
        }
    }

    /// <summary>Stops marking; the marks not taken are dropped at the next <see cref="Enable"/>.</summary>
    public void Disable()
    {
        lock (_pass)
        {
            _log.Disable();
        }
    }

    /// <summary>
    /// One pass: writes into <paramref name="destination"/> the pages written since the last pass (or
    /// since <see cref="Enable"/>), which the caller copies after this returns. Waits for each running
    /// hart to reach a block boundary (microseconds; a hart asleep in WFI is woken).
    /// </summary>
    public void CollectPass(DirtyPageSet destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        lock (_pass)
        {
            if (!_log.Enabled)
            {
                throw new InvalidOperationException("The dirty-page log is off: Enable it (and copy all of RAM) before collecting passes.");
            }

            _log.TakeInto(destination); // (1)
            DropWriteTlbs();            // (2)
        }
    }

    /// <summary>Asks every hart at once, then waits for each: a pass costs one round trip, not one per hart.</summary>
    private void DropWriteTlbs()
    {
        foreach (var hart in _harts)
        {
            hart.RequestWriteTlbDrop();
        }

        foreach (var hart in _harts)
        {
            hart.WaitForWriteTlbDrop();
        }
    }
}
