namespace HostVM.Machine.State;

/// <summary>
/// A part of the machine whose state a snapshot or a migration carries. The state is an immutable record
/// without behaviour (arrays copied on save and on restore, no setters), so what was saved cannot change
/// under the saver and a restored part shares nothing with the one it came from. Restoring puts the part
/// exactly where the saved one was; caches (TLBs, decoded code) are not state and are dropped instead.
/// </summary>
public interface IPersistent<TState>
    where TState : notnull
{
    TState SaveState();

    void RestoreState(TState state);
}
