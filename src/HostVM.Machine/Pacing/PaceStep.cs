namespace HostVM.Machine.Pacing;

/// <summary>What a paced hart does next: run guest code for <see cref="Run"/> of wall time, or sleep for <see cref="Sleep"/>.</summary>
public readonly record struct PaceStep(TimeSpan Run, TimeSpan Sleep)
{
    public bool IsSleep => Sleep > TimeSpan.Zero;

    public static PaceStep RunFor(TimeSpan run) => new(run, TimeSpan.Zero);

    public static PaceStep SleepFor(TimeSpan sleep) => new(TimeSpan.Zero, sleep);
}
