namespace HostVM.Host.Supervision;

/// <summary>A VMM refused or failed a control call.</summary>
public sealed class VmmRequestException(string message) : Exception(message);
