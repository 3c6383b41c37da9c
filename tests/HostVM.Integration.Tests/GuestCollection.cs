namespace HostVM.Integration.Tests;

/// <summary>Guest boots run one at a time: on a 2-core machine, parallel boots only slow each other down.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GuestCollection
{
    public const string Name = "guests";
}
