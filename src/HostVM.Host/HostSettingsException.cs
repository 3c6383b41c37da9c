namespace HostVM.Host;

/// <summary>A setting that cannot be used; the message names it.</summary>
public sealed class HostSettingsException(string message) : Exception(message);
