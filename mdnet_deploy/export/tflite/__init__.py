"""TFLite/LiteRT compilation: conversion, flatbuffer edits, verification."""
